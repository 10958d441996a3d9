"""AUTOMATIC1111's one global job state and the ``/sdapi/v1/progress`` answer built from it.

Mirrors ``modules/shared_state.py`` (``State.dict/begin/end/nextjob``) and ``Api.progressapi``
in ``modules/api/api.py``: progress is global (whoever's job runs, UI or API), 0 while idle
(``job_count == 0``), else ``0.01 + job_no/job_count + step/steps/job_count`` capped at 1;
``eta_relative = elapsed/progress - elapsed``; ``current_image`` is a preview made at most every
``show_progress_every_n_steps`` steps, base64 (``null`` when none or ``?skip_current_image=true``).
``end()`` clears only ``job`` and ``job_count``: the counters of the last job stay visible.
"""

from __future__ import annotations

import base64
import datetime
import time
from dataclasses import dataclass, field
from typing import Any

from pixelpipe.fakes.render import render


@dataclass
class Preview:
    prompt: str
    seed: int
    width: int
    height: int


@dataclass
class State:
    skipped: bool = False
    interrupted: bool = False
    stopping_generation: bool = False
    job: str = ""
    job_count: int = 0
    job_timestamp: str = "0"
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0
    time_start: float = 0.0
    textinfo: str | None = None
    current_image: bytes | None = None
    current_image_sampling_step: int = 0
    preview: Preview | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped,
            "interrupted": self.interrupted,
            "stopping_generation": self.stopping_generation,
            "job": self.job,
            "job_count": self.job_count,
            "job_timestamp": self.job_timestamp,
            "job_no": self.job_no,
            "sampling_step": self.sampling_step,
            "sampling_steps": self.sampling_steps,
        }

    def begin(self, job: str) -> None:
        self.sampling_step = 0
        self.time_start = time.time()
        self.job_count = -1
        self.job_no = 0
        self.job_timestamp = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
        self.current_image = None
        self.current_image_sampling_step = 0
        self.skipped = self.interrupted = self.stopping_generation = False
        self.textinfo = None
        self.job = job
        self.preview = None

    def nextjob(self) -> None:
        self.job_no += 1
        self.sampling_step = 0
        self.current_image_sampling_step = 0

    def end(self) -> None:
        self.job = ""
        self.job_count = 0

    def progress(self, options: dict[str, Any], skip_current_image: bool) -> dict[str, Any]:
        if self.job_count == 0:
            return {
                "progress": 0,
                "eta_relative": 0,
                "state": self.as_dict(),
                "current_image": None,
                "textinfo": self.textinfo,
            }
        progress = 0.01
        if self.job_count > 0:
            progress += self.job_no / self.job_count
        if self.sampling_steps > 0:
            progress += 1 / self.job_count * self.sampling_step / self.sampling_steps
        elapsed = time.time() - self.time_start
        eta_relative = elapsed / progress - elapsed
        self._set_current_image(options)
        image = None
        if self.current_image is not None and not skip_current_image:
            image = base64.b64encode(self.current_image).decode()
        return {
            "progress": min(progress, 1),
            "eta_relative": eta_relative,
            "state": self.as_dict(),
            "current_image": image,
            "textinfo": self.textinfo,
        }

    def _set_current_image(self, options: dict[str, Any]) -> None:
        """``State.set_current_image``: decode a preview when enough steps passed since the last."""
        every = int(options.get("show_progress_every_n_steps", 10))
        if not options.get("live_previews_enable", True) or every == -1:
            return
        if self.sampling_step - self.current_image_sampling_step < every:
            return
        if self.preview is None or self.sampling_step == 0:
            return
        p = self.preview
        # the "Approx NN" live preview decodes the latent: 1/8 of the final size
        marker = f"{p.prompt}\x00preview\x00{self.sampling_step}"
        size = max(8, p.width // 8), max(8, p.height // 8)
        self.current_image = render(marker, p.seed, *size, "png")
        self.current_image_sampling_step = self.sampling_step
