"""Deterministic stand-in images for the fake providers (same prompt + seed → same bytes)."""

from __future__ import annotations

import hashlib
import io
import random
from functools import lru_cache

from PIL import Image, ImageDraw

_PIL_FORMATS = {"webp": "WEBP", "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}


@lru_cache(maxsize=128)
def render(prompt: str, seed: int, width: int, height: int, fmt: str, black: bool = False) -> bytes:
    """A ``width``x``height`` picture in ``fmt`` (webp, png, jpg/jpeg); all black when ``black``."""
    image = _black(width, height) if black else _picture(prompt, seed, width, height)
    buf = io.BytesIO()
    image.save(buf, format=_PIL_FORMATS[fmt], quality=80)
    return buf.getvalue()


def _black(width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height), (0, 0, 0))


def _picture(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    digest = hashlib.sha256(f"{prompt}\x00{seed}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    small = (max(1, width // 8), max(1, height // 8))
    image = Image.new("RGB", small, _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(small[0]), rng.randrange(small[1])
        x1, y1 = x0 + rng.randrange(1, small[0] + 1), y0 + rng.randrange(1, small[1] + 1)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=_colour(rng))
    draw.text((2, 2), "FAKE", fill=(255, 255, 255))
    return image.resize((width, height), Image.Resampling.NEAREST)


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)
