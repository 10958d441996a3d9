"""FLUX.1 Kontext on fal (``fal-ai/flux-pro/kontext``): editing by instruction.

The edit endpoint takes ``prompt``, ``image_url`` (required: a URL or a data URI),
``aspect_ratio`` (optional: the input's when left out), ``guidance_scale`` (not sent: the
catalog's Kontext takes no guidance, as Replicate's has none), ``num_images``,
``seed``, ``safety_tolerance`` ("1"-"6"), ``output_format`` (jpeg or png), ``sync_mode``,
``enhance_prompt``. A request without an input image goes to the model's ``/text-to-image``
endpoint (the same fields less ``image_url``), at about one megapixel in the ratio asked for.
"""

from __future__ import annotations

from typing import Any

from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage
from pixelpipe.providers.kontext import kontext_ratio

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
        data["image_url"] = images[0].data_uri()
        if req.aspect_ratio:
            data["aspect_ratio"] = req.aspect_ratio
        return data
    data["aspect_ratio"] = kontext_ratio(req, "fal")
    return data
