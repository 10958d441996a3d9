"""FLUX.1 Kontext on fal (``fal-ai/flux-pro/kontext``): editing by instruction.

The edit endpoint takes ``prompt``, ``image_url`` (required: a URL or a data URI),
``aspect_ratio`` (optional: the input's when left out), ``guidance_scale`` (not sent: the
catalog's Kontext takes no guidance, as Replicate's has none), ``num_images``,
``seed``, ``safety_tolerance`` ("1"-"6"), ``output_format`` (jpeg or png), ``sync_mode``,
``enhance_prompt``. A request without an input image goes to the model's ``/text-to-image``
endpoint (the same fields less ``image_url``), at about one megapixel in the ratio asked for.
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
TEXT_TO_IMAGE = "text-to-image"


def is_kontext(model_id: str) -> bool:
    return "/kontext" in model_id


def kontext_path(model_id: str, images: tuple[InputImage, ...]) -> str:
    """The endpoint to submit to: the model's own with an input image, else its text-to-image."""
    path = "/".join(p for p in model_id.split("/") if p)
    return path if images else f"{path}/{TEXT_TO_IMAGE}"


def kontext_input(req: CanonicalRequest, images: tuple[InputImage, ...]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "prompt": req.prompt,
        "num_images": 1,
        "seed": req.seed,
        "output_format": "jpeg" if req.format == "jpeg" else "png",
        "safety_tolerance": "2",
    }
    if images:
        image = images[0]
        data["image_url"] = (
            f"data:{image.content_type};base64,{base64.b64encode(image.data).decode()}"
        )
        if req.aspect_ratio:
            data["aspect_ratio"] = req.aspect_ratio
        return data
    data["aspect_ratio"] = _ratio(req)
    return data


def _ratio(req: CanonicalRequest) -> str:
    for name, size in KONTEXT_SIZES.items():
        if size == (req.width, req.height):
            return name
    raise ProviderInvalidInput(
        f"fal FLUX Kontext cannot draw {req.width}x{req.height}; use one of its aspect ratios",
        provider="fal",
    )
