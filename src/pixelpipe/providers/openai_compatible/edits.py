"""``POST /v1/images/edits`` on an OpenAI-compatible image server (vLLM-Omni, SGLang diffusion):
an edit by instruction with one or more input images.

Both servers take multipart/form-data: the generation's fields as text (``model``, ``prompt``,
``n``, ``size``, ``response_format``, ``seed``, ``negative_prompt``, ``num_inference_steps``,
``guidance_scale``, ``true_cfg_scale``) and the images as repeated ``image`` file parts (SGLang
also reads ``image[]``; vLLM-Omni documents repeated ``image``). Neither takes a mask (SGLang's
``mask`` part is read and ignored; vLLM-Omni has none) nor a strength, so a model on this kind
may take images but not ``accepts_mask`` or ``strength`` (:func:`check_inputs`). No image →
422 "Field 'image' or 'url' is required". Sources: vllm-project/vllm-omni
``docs/serving/image_edit_api.md``; sgl-project/sglang ``multimodal_gen/runtime/entrypoints/
openai/image_api.py`` ``edits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pixelpipe.catalog.operator_spec import InputClaims
from pixelpipe.providers.base import InputImage
from pixelpipe.providers.http import Multipart

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def edit_form(body: Mapping[str, Any], images: tuple[InputImage, ...]) -> Multipart:
    """The multipart body of an edit: ``body`` (a generation's JSON body) as text fields, then
    each image as an ``image`` part, in order."""
    fields = {k: str(v) for k, v in body.items()}
    files = tuple(
        (
            "image",
            (f"image-{i + 1}.{_EXTENSIONS.get(im.content_type, 'png')}", im.data, im.content_type),
        )
        for i, im in enumerate(images)
    )
    return Multipart(fields, files)


def check_inputs(options: Mapping[str, Any], claims: InputClaims) -> str | None:
    """The catalog's check of a model with image inputs on an ``openai_compatible`` backend."""
    if claims.mask:
        return (
            "accepts_mask = true, but the OpenAI-compatible servers' /v1/images/edits takes no "
            "mask (SGLang ignores one, vLLM-Omni has none): set accepts_mask = false (or "
            "max_input_images = 0 for text only), or serve inpainting from an a1111 or cog "
            "backend"
        )
    if claims.strength:
        return (
            "the model has a strength range, but /v1/images/edits of vLLM-Omni and SGLang takes "
            "no strength: take strength out of the model (one that extends a model with a "
            "strength inherits it: set max_input_images = 0 for text only, or define the model "
            "without extends)"
        )
    return None
