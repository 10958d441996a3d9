"""FLUX.1 Kontext, as every host of it draws: without an input image it draws from the prompt at
about one megapixel, in one of its aspect ratios (:data:`KONTEXT_SIZES`). The hosts' own field
names live in their packages (``providers/replicate/kontext.py``, ``providers/fal/kontext.py``)."""

from __future__ import annotations

from pixelpipe.errors import ProviderInvalidInput
from pixelpipe.intake import CanonicalRequest

# Kontext's preferred resolutions (about 1 MP), by aspect ratio
KONTEXT_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1392, 752),
    "9:16": (752, 1392),
    "4:3": (1184, 880),
    "3:4": (880, 1184),
    "3:2": (1248, 832),
    "2:3": (832, 1248),
    "21:9": (1568, 672),
    "9:21": (672, 1568),
}


def kontext_ratio(req: CanonicalRequest, provider: str) -> str:
    """The ratio whose Kontext size is the request's size; refused when there is none."""
    for name, size in KONTEXT_SIZES.items():
        if size == (req.width, req.height):
            return name
    raise ProviderInvalidInput(
        f"{provider} FLUX Kontext cannot draw {req.width}x{req.height}; use one of its aspect "
        f"ratios ({', '.join(KONTEXT_SIZES)})",
        provider=provider,
    )
