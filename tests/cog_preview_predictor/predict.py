"""A CPU predictor that shows its picture forming, for a real cog server in the tests: it yields
``previews`` coarse frames (each a blurred, smaller stand-in of the final picture) ``sleep_s``
apart, then the final image — an ``AsyncIterator[Path]``, as cog predictors that stream their
progress are written, so cog sends an ``output`` webhook per frame (never throttled) and the
prediction's ``output`` is every frame, the final image last. It also prints a diffusers-like
tqdm bar (``NN%|…| k/n``), which reaches the ``logs`` webhooks.

No ``.cog/openapi_schema.json``: coglet accepts any input (see tests/servers/cog.py).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator

from cog import BaseRunner, Input, Path
from PIL import Image, ImageFilter


def colour(prompt: str, seed: int) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{prompt}\x00{seed}".encode()).digest()
    return digest[0], digest[1], digest[2]


def picture(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    """The final picture: a colour field with a contrasting square (so a blur shows)."""
    img = Image.new("RGB", (width, height), colour(prompt, seed))
    r, g, b = colour(prompt, seed)
    img.paste((255 - r, 255 - g, 255 - b), (width // 4, height // 4, width // 2, height // 2))
    return img


def save(img: Image.Image, name: str) -> Path:
    out = Path(tempfile.mkdtemp(prefix="cog-preview-")) / name
    img.save(out, format="PNG")
    return out


class Runner(BaseRunner):
    def run(
        self,
        prompt: str = Input(description="What to draw"),
        seed: int = Input(default=1),
        width: int = Input(default=64),
        height: int = Input(default=64),
        num_outputs: int = Input(default=1),
        previews: int = Input(default=3, description="Frames shown before the final image"),
        sleep_s: float = Input(default=0.6, description="Simulated GPU time per frame"),
    ) -> Iterator[Path]:
        final = picture(prompt, seed, width, height)
        steps = previews + 1
        for step in range(1, steps + 1):
            time.sleep(sleep_s)
            print(f"{100 * step // steps:3d}%|{'#' * step:<{steps}}| {step}/{steps}", flush=True)
            if step < steps:
                blurred = final.filter(ImageFilter.GaussianBlur(radius=8 * (steps - step)))
                yield save(blurred, f"preview-{step}.png")
        yield save(final, "final.png")
