"""Images in a provider's answers: their type from their first bytes, and a run's live preview as
the job's progress carries it — a small ``data:`` URL, never stored as the image, never billed.

Each progress event is kept with the job and replayed by its event stream, so a preview travels
only while it is small (:data:`PREVIEW_MAX_BYTES`); a larger one is left out.
"""

from __future__ import annotations

import base64
import io

from PIL import Image

PREVIEW_MAX_BYTES = 24 * 1024
PREVIEW_SIDE = 256  # a preview made from a full image is shrunk to this many px a side


def image_type(data: bytes) -> str | None:
    """``image/png``, ``image/jpeg`` or ``image/webp`` from the first bytes; None otherwise."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def preview_url(image: bytes, content_type: str | None = None) -> str | None:
    """``image`` as a ``data:`` URL for a progress event; None when empty or too large.
    ``content_type``: what the server said it is (else read from its bytes)."""
    if not image or len(image) > PREVIEW_MAX_BYTES:
        return None
    kind = content_type or image_type(image) or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(image).decode()}"


def thumbnail_url(image: bytes) -> str | None:
    """``image`` (a full picture: a partial from OpenAI, an intermediate output of cog) shrunk to
    at most :data:`PREVIEW_SIDE` px a side, as a WebP ``data:`` URL; None when too large.
    Its CPU is mostly the decode (a 1024x1024 PNG: ~14 ms of ~16); the shrinking is cheap.
    Raises OSError / ValueError when ``image`` is not a picture Pillow reads."""
    with Image.open(io.BytesIO(image)) as im:
        im.draft(None, (PREVIEW_SIDE, PREVIEW_SIDE))  # a JPEG decodes at 1/2-1/8 scale
        # reducing_gap 1: a box reduce by the whole factor first (1024 px: 4x4 blocks), then a
        # small resize; Pillow's default (2) resamples from twice the size, ~4x the CPU
        im.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), reducing_gap=1.0)
        picture = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    buf = io.BytesIO()
    picture.save(buf, "WEBP", quality=70, method=0)
    data = buf.getvalue()
    return preview_url(data, "image/webp") if len(data) <= PREVIEW_MAX_BYTES else None
