"""A1111's ``GET /sdapi/v1/progress``, read into :class:`Progress`.

The answer is ``{progress: 0-1, eta_relative: s, state: {job, job_count, job_no, sampling_step,
sampling_steps, …}, current_image: base64 PNG | null, textinfo}``. It is **global**: it
describes whatever the server runs (a web UI user's job too), 0 while idle; the provider only
reads it while its own txt2img call is in flight. ``eta_relative`` goes negative on a job's last
step (the uncapped progress passes 1); it is reported as 0 then. The live preview travels as a
``data:`` URL while it is small (:data:`PREVIEW_MAX_BYTES`), and is left out otherwise.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from pixelpipe.providers.previews import preview_url

# a live preview larger than this is left out of the progress events (each is kept with the job
# and replayed by its event stream): the cheap "Approx" previews are small, a full decode is not


@dataclass(frozen=True, slots=True)
class Progress:
    """One look at a job's progress on an A1111 server.

    ``state``: ``"queued"`` (waiting for the backend's one slot in this process; ``position`` 1 is
    next) or ``"running"`` (its txt2img call is in flight: the server's figures follow).
    """

    state: str
    fraction: float = 0.0  # 0-1
    eta_s: float | None = None
    step: int = 0
    steps: int = 0
    position: int | None = None  # while queued
    job: str = ""  # what the server says it runs ("" idle; a web UI user's job shows too)
    preview: bytes | None = None  # the live preview (a small PNG), when the server made one

    def as_progress(self) -> dict[str, Any]:
        """The figures as a :attr:`ProviderUpdate.progress` dict: ``state``, ``percent``, then
        ``queue_position`` while queued, or ``eta_s``, ``step``, ``steps`` and ``preview`` (the
        live preview as a ``data:`` URL, left out when there is none or it is over
        :data:`PREVIEW_MAX_BYTES`) while running."""
        out: dict[str, Any] = {"state": self.state, "percent": round(100 * self.fraction, 1)}
        if self.state == "queued":
            return out | {"queue_position": self.position}
        eta = None if self.eta_s is None else round(self.eta_s, 1)
        out |= {"eta_s": eta, "step": self.step, "steps": self.steps}
        if (preview := self.preview_url()) is not None:
            out["preview"] = preview
        return out

    def preview_url(self) -> str | None:
        """The live preview as a ``data:`` URL; None when there is none, or it is too large to
        travel in a progress event (each is kept with the job and replayed by its event stream)."""
        return preview_url(self.preview) if self.preview else None


def parse_progress(data: dict[str, Any]) -> Progress:
    raw = data.get("state")
    state: dict[str, Any] = raw if isinstance(raw, dict) else {}
    eta = _number(data.get("eta_relative"))
    return Progress(
        "running",
        fraction=min(1.0, max(0.0, _number(data.get("progress")))),
        eta_s=max(0.0, eta),
        step=int(_number(state.get("sampling_step"))),
        steps=int(_number(state.get("sampling_steps"))),
        job=str(state.get("job") or "") if _number(state.get("job_count")) else "",
        preview=_image(data.get("current_image")),
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _image(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        return None
