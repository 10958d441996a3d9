"""A small CPU predictor for a real cog server in the tests (tests/servers/cog.py).

It stands in for a GPU image model: ``sleep_s`` simulates the GPU time, ``fail`` makes the
prediction fail, and the PNGs are a pure function of (prompt, seed, index, width, height), so a
test can tell which request produced which image; ``crash`` ends the worker process
the way an out-of-memory kill would. ``run`` is async so that the server can run
several predictions at once (``COG_MAX_CONCURRENCY`` > 1 needs an async ``run``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile

from cog import BaseRunner, Input, Path
from PIL import Image

STEPS = 4  # a run with sleep_s prints its progress in this many steps


class PredictorFailedError(RuntimeError):
    """Raised on purpose when the input asks for a failed prediction (``fail=True``)."""


def image_colour(prompt: str, seed: int, index: int) -> tuple[int, int, int]:
    """The fill colour of image ``index``: the first three bytes of a hash of the inputs."""
    digest = hashlib.sha256(f"{prompt}\x00{seed}\x00{index}".encode()).digest()
    return digest[0], digest[1], digest[2]


def write_png(prompt: str, seed: int, index: int, width: int, height: int) -> Path:
    out = Path(tempfile.mkdtemp(prefix="cog-test-")) / f"out-{index}.png"
    Image.new("RGB", (width, height), image_colour(prompt, seed, index)).save(out, format="PNG")
    return out


class Runner(BaseRunner):
    async def run(
        self,
        prompt: str = Input(description="What to draw"),
        seed: int = Input(default=1, description="Same prompt and seed, same image"),
        width: int = Input(default=64, ge=8, le=1024),
        height: int = Input(default=64, ge=8, le=1024),
        num_outputs: int = Input(default=1, ge=1, le=4),
        sleep_s: float = Input(default=0.0, ge=0.0, le=60.0, description="Simulated GPU time"),
        fail: bool = Input(default=False, description="Raise instead of drawing"),
        crash: bool = Input(default=False, description="Kill the worker process (as an OOM would)"),
    ) -> list[Path]:
        for step in range(1, STEPS + 1 if sleep_s else 1):  # a diffusers-like tqdm bar
            await asyncio.sleep(sleep_s / STEPS)
            print(f"{100 * step // STEPS:3d}%|{'#' * step:<{STEPS}}| {step}/{STEPS}", flush=True)
        if crash:
            os._exit(3)
        if fail:
            raise PredictorFailedError(f"asked to fail (prompt {prompt!r})")
        print(f"drew {num_outputs} image(s) for seed {seed}")
        return [write_png(prompt, seed, i, width, height) for i in range(num_outputs)]
