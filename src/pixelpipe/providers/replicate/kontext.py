"""FLUX.1 Kontext on Replicate (``black-forest-labs/flux-kontext-pro``): editing by instruction.

Its input: ``prompt``, ``input_image`` (a URL or a data URI; jpeg, png, gif or webp),
``aspect_ratio`` (``match_input_image``, the default, or a ratio), ``output_format`` (jpg or png),
``safety_tolerance`` (0-6, at most 2 with an input image; left at its default 2), ``seed``,
``prompt_upsampling``. Without an input image it draws from the prompt alone, at about one
megapixel in the ratio asked for (``providers.kontext.KONTEXT_SIZES``). The input image is sent
inline as a data URI: it is already verified and stripped, and nothing has to be uploaded first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage
from pixelpipe.providers.kontext import kontext_ratio
from pixelpipe.providers.replicate.files import image_ref


def is_kontext(model_id: str) -> bool:
    return "flux-kontext" in model_id


def kontext_input(
    req: CanonicalRequest,
    images: tuple[InputImage, ...],
    uris: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``input`` of a Kontext prediction: an edit of ``images[0]``, or text to image.
    ``uris``: uploaded input files by digest (``files.py``); an image not in it goes inline."""
    data: dict[str, Any] = {
        "prompt": req.prompt,
        "seed": req.seed,
        "output_format": "jpg" if req.format == "jpeg" else "png",
    }
    if images:
        data["input_image"] = image_ref(images[0], uris)
        data["aspect_ratio"] = req.aspect_ratio or "match_input_image"
        return data
    data["aspect_ratio"] = kontext_ratio(req, "replicate")
    return data
