"""The blurred stand-in of a flagged image (policy ``blur``): same size, unrecognisable."""

from __future__ import annotations

import io

from PIL import Image, ImageFilter


def blurred_png(data: bytes, radius: float) -> bytes:
    """``data`` (a verified image) downscaled, Gaussian-blurred and scaled back, as PNG."""
    with Image.open(io.BytesIO(data)) as picture:
        rgb = picture.convert("RGB")
    small = rgb.resize((max(1, rgb.width // 16), max(1, rgb.height // 16)), Image.Resampling.BOX)
    soft = small.filter(ImageFilter.GaussianBlur(max(1.0, radius / 16)))
    out = soft.resize(rgb.size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(radius))
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()
