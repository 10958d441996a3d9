"""How large an input image may be: the limits every route that takes one applies."""

from __future__ import annotations

from dataclasses import dataclass

from pixelpipe.intake import MAX_INPUT_IMAGES  # per request (OpenAI edits: image[] up to 16)
from pixelpipe.settings import Settings

MiB = 1024 * 1024
INPUT_FORMATS = ("png", "jpeg", "webp")


@dataclass(frozen=True, slots=True)
class InputLimits:
    """``max_bytes``: an input's encoded size (``PIXELPIPE_MAX_UPLOAD_BYTES``, 25 MiB);
    ``max_pixels``: width x height as the file declares it, checked before decoding (bombs)."""

    max_bytes: int = 25 * MiB
    max_pixels: int = 40_000_000
    max_images: int = MAX_INPUT_IMAGES

    @classmethod
    def from_settings(cls, settings: Settings) -> InputLimits:
        return cls(max_bytes=settings.max_upload_bytes)
