"""FLUX.1 Kontext on Replicate (``black-forest-labs/flux-kontext-pro``): editing by instruction.

Its input: ``prompt``, ``input_image`` (a URL or a data URI; jpeg, png, gif or webp),
``aspect_ratio`` (``match_input_image``, the default, or a ratio), ``output_format`` (jpg or png),
``safety_tolerance`` (0-6, at most 2 with an input image; left at its default 2), ``seed``,
``prompt_upsampling``. Without an input image it draws from the prompt alone, at about one
megapixel in the ratio asked for (``KONTEXT_SIZES``). The input image is sent inline as a data
URI: it is already verified and stripped, and nothing has to be uploaded first.
"""

from __future__ import annotations

import base64
from typing import Any

from pixelpipe.errors import ProviderInvalidInput
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage

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


def is_kontext(model_id: str) -> bool:
    return "flux-kontext" in model_id


def data_uri(image: InputImage) -> str:
    return f"data:{image.content_type};base64,{base64.b64encode(image.data).decode()}"


def kontext_input(req: CanonicalRequest, images: tuple[InputImage, ...]) -> dict[str, Any]:
    """The ``input`` of a Kontext prediction: an edit of ``images[0]``, or text to image."""
    data: dict[str, Any] = {
        "prompt": req.prompt,
        "seed": req.seed,
        "output_format": "jpg" if req.format == "jpeg" else "png",
    }
    if images:
        data["input_image"] = data_uri(images[0])
        data["aspect_ratio"] = req.aspect_ratio or "match_input_image"
        return data
    data["aspect_ratio"] = kontext_ratio(req)
    return data


def kontext_ratio(req: CanonicalRequest) -> str:
    """The ratio whose Kontext size is the request's size."""
    for name, size in KONTEXT_SIZES.items():
        if size == (req.width, req.height):
            return name
    raise ProviderInvalidInput(
        f"replicate FLUX Kontext cannot draw {req.width}x{req.height}; use one of its aspect "
        "ratios",
        provider="replicate",
    )
