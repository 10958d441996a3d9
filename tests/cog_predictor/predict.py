"""A small CPU predictor for a real cog server in the tests (tests/servers/cog.py).

It stands in for a GPU image model: ``sleep_s`` simulates the GPU time, ``fail`` makes the
prediction fail, and the PNGs are a pure function of (prompt, seed, index, width, height), so a
test can tell which request produced which image; ``crash`` ends the worker process
the way an out-of-memory kill would.

Image inputs (an edit, like Replicate's SDXL cog: ``image``, ``mask``, ``prompt_strength``): with
``image`` the output is that picture resized to ``width``x``height`` and blended towards the
request's colour by ``prompt_strength``; with ``mask`` (white = repaint, black = keep) only
where the mask is white, every other pixel the input's own. The predictor prints the sha256 of
each input file it got, and copies it to ``$PREDICTOR_INPUTS_DIR/<sha256>`` when that is set, so a
test can check the exact bytes that reached it. ``run`` is async so that the server can run
several predictions at once (``COG_MAX_CONCURRENCY`` > 1 needs an async ``run``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
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


def received(path: Path, role: str) -> None:
    """Say (and keep, with ``PREDICTOR_INPUTS_DIR``) which bytes arrived as ``role``."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{role} sha256:{digest}", flush=True)
    keep = os.environ.get("PREDICTOR_INPUTS_DIR")
    if keep:
        shutil.copyfile(path, os.path.join(keep, digest))


def write_edit(
    image: Path,
    mask: Path | None,
    colour: tuple[int, int, int],
    strength: float,
    index: int,
    size: tuple[int, int],
) -> Path:
    with Image.open(image) as im:
        base = im.convert("RGB").resize(size)
    painted = Image.blend(base, Image.new("RGB", size, colour), strength)
    if mask is not None:
        with Image.open(mask) as m:
            region = m.convert("L").resize(size, Image.Resampling.NEAREST)
        painted = Image.composite(painted, base, region.point(lambda v: 255 if v >= 128 else 0))
    out = Path(tempfile.mkdtemp(prefix="cog-test-")) / f"edit-{index}.png"
    painted.save(out, format="PNG")
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
        image: Path | None = Input(default=None, description="Input image (an edit)"),
        mask: Path | None = Input(default=None, description="White = repaint, black = keep"),
        prompt_strength: float = Input(default=0.8, ge=0.0, le=1.0, description="Edit strength"),
    ) -> list[Path]:
        for step in range(1, STEPS + 1 if sleep_s else 1):  # a diffusers-like tqdm bar
            await asyncio.sleep(sleep_s / STEPS)
            print(f"{100 * step // STEPS:3d}%|{'#' * step:<{STEPS}}| {step}/{STEPS}", flush=True)
        if crash:
            os._exit(3)
        if fail:
            raise PredictorFailedError(f"asked to fail (prompt {prompt!r})")
        print(f"drew {num_outputs} image(s) for seed {seed}")
        if image is None:
            return [write_png(prompt, seed, i, width, height) for i in range(num_outputs)]
        received(image, "image")
        if mask is not None:
            received(mask, "mask")
        print(f"prompt_strength {prompt_strength}", flush=True)
        return [
            write_edit(
                image, mask, image_colour(prompt, seed, i), prompt_strength, i, (width, height)
            )
            for i in range(num_outputs)
        ]
