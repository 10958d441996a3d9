"""``POST /sdapi/v1/img2img``: an edit (image-to-image, inpainting) on AUTOMATIC1111 / Forge.

The body is txt2img's (``client.txt2img_body``) plus, from AUTOMATIC1111's ``modules/api``
(``StableDiffusionImg2ImgProcessingAPI``, ``img2imgapi``, ``decode_base64_to_image``):

- ``init_images``: a list of base64 images. Plain base64 is what A1111 documents and sends back;
  it also strips a ``data:image/...;base64,`` prefix, and fetches ``http(s)`` URLs only when
  ``api_enable_requests`` is on, so pixelpipe always sends plain base64 of the clean bytes.
  Several init images are a *batch* (one result each), not references: a model on this kind takes
  one input image (:func:`check_inputs`).
- ``mask``: base64, **white = repaint**; an RGBA mask's alpha is read as the mask (opaque =
  repaint), the inverse of OpenAI's transparent = edit, so it is converted
  (:func:`pixelpipe.providers.masks.white_repaint_png`). ``inpainting_mask_invert = 0``.
- ``denoising_strength`` (A1111's default 0.75) from the request's ``strength``, else the
  backend's option ``denoising_strength``, else left to the server.
- ``inpainting_fill`` (what the masked area starts from: 0 fill, 1 original, 2 latent noise, 3
  latent nothing; default here 1, original, which keeps the picture's colours at strength < 1),
  ``mask_blur`` (default 4 px, A1111's) and ``inpaint_full_res`` (default false: the whole
  picture, as the web UI's default; A1111's API default is true, "only masked"), each overridden
  by the backend option of the same name.
- Errors: no ``init_images`` → 404 "Init image not found"; an image or mask that is not base64 of
  an image → 500 ``HTTPException`` "Invalid encoded image" (A1111's handler; mapped to
  ProviderUnavailable like every 5xx: pixelpipe never sends one, its inputs are verified).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from pixelpipe.catalog.operator_spec import InputClaims
from pixelpipe.providers.base import ProviderRequest
from pixelpipe.providers.masks import white_repaint_png

IMG2IMG_DEFAULTS: dict[str, Any] = {"inpainting_fill": 1, "mask_blur": 4, "inpaint_full_res": False}


def img2img_fields(req: ProviderRequest, options: Mapping[str, Any]) -> dict[str, Any]:
    """What ``img2img`` adds to the txt2img body for ``req`` (which has input images)."""
    fields: dict[str, Any] = {"init_images": [_b64(i.data) for i in req.images]}
    strength = req.request.strength
    if strength is None:
        strength = options.get("denoising_strength")
    if strength is not None:
        fields["denoising_strength"] = strength
    if req.mask is not None:
        fields["mask"] = _b64(white_repaint_png(req.mask))
        fields["inpainting_mask_invert"] = 0
        fields |= {k: options.get(k, v) for k, v in IMG2IMG_DEFAULTS.items()}
    return fields


def check_inputs(options: Mapping[str, Any], claims: InputClaims) -> str | None:
    """The catalog's check of a model with image inputs on an ``a1111`` backend: what to fix, or
    None. A1111 takes one init image (and a mask, and a strength)."""
    if claims.max_images > 1:
        return (
            f"max_input_images = {claims.max_images}, but AUTOMATIC1111's img2img takes one "
            "init image (several are a batch, one result each): set max_input_images = 1"
        )
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
