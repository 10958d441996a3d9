"""The fake A1111's ``POST /sdapi/v1/img2img``: its inputs read as AUTOMATIC1111 reads them, and a
result visibly (and deterministically) derived from them.

Facts (AUTOMATIC1111 1.10 ``modules/api/api.py`` ``img2imgapi`` / ``decode_base64_to_image``,
``modules/api/models.py`` ``StableDiffusionImg2ImgProcessingAPI``, ``modules/processing.py``
``StableDiffusionProcessingImg2Img``, ``modules/images.py``/``masking.py``):

- ``init_images`` (a list; another type is a 422 ``type_error.list``) missing or null → 404
  HTTPException "Init image not found". ``mask`` is decoded *before* the queue lock, the init
  images inside it (after waiting for the server's one slot).
- Decoding: an ``http(s)://`` string is fetched only with ``api_enable_requests`` (off here: 500
  "Requests not allowed"); a ``data:image/…;base64,`` prefix is stripped; then
  ``base64.b64decode`` (not strict: characters outside the alphabet are skipped) and PIL opens
  it. Anything that fails is a 500 ``HTTPException`` "Invalid encoded image" through A1111's
  handler (not a 422).
- The mask (``create_binary_mask``, ``mask_round`` on): an RGBA mask whose alpha is not all
  opaque is read from its **alpha** (opaque = repaint); any other from its grey level; either
  thresholded at > 128. White = repaint; ``inpainting_mask_invert = 1`` swaps it.
- Several init images are a batch: more than ``batch_size`` → 500 RuntimeError "bad number of
  images passed: N; expecting B or less"; one image is repeated over the batch.
- The result: the first init image resized to ``width``x``height`` (``resize_mode`` 0, "just
  resize"), blended towards the prompt's picture by ``denoising_strength`` (default 0.75); with a
  mask, only where it is white, the original pixels kept elsewhere (A1111 pastes the original
  back outside the mask). ``mask_blur`` is not applied here (the fake's edge is sharp).
- Sampling runs ``int(min(denoising_strength, 0.999) × steps)`` steps (at least 1) under job
  ``scripts_img2img``; ``/progress`` shows them like txt2img's.
- The answer's ``parameters`` echo the request with ``init_images`` and ``mask`` null (unless
  ``include_init_images``); ``info.denoising_strength`` is set.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from pixelpipe.fakes.render import render

DEFAULT_DENOISING = 0.75


class InvalidImage(Exception):
    """``decode_base64_to_image`` failed: A1111 answers 500 HTTPException with this detail."""


def decode_image(encoding: Any) -> Image.Image:
    """``decode_base64_to_image``, without remote fetches (``api_enable_requests`` off)."""
    if not isinstance(encoding, str):
        raise InvalidImage("Invalid encoded image")
    if encoding.startswith(("http://", "https://")):
        raise InvalidImage("Requests not allowed")
    if encoding.startswith("data:image/"):
        try:
            encoding = encoding.split(";")[1].split(",")[1]
        except IndexError:
            raise InvalidImage("Invalid encoded image") from None
    try:
        image = Image.open(io.BytesIO(base64.b64decode(encoding)))
        image.load()
    except Exception:  # A1111 catches everything here
        raise InvalidImage("Invalid encoded image") from None
    return image


def binary_mask(mask: Image.Image, invert: bool) -> Image.Image:
    """``create_binary_mask`` (round on), then ``inpainting_mask_invert``: 255 = repaint."""
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        grey = mask.split()[-1].convert("L")
    else:
        grey = mask.convert("L")
    region = grey.point(lambda x: 255 if x > 128 else 0)
    return region.point(lambda x: 255 - x) if invert else region


def sampling_steps(steps: int, denoising: float) -> int:
    return max(1, int(min(denoising, 0.999) * steps))


def derive(
    init: Image.Image,
    mask: Image.Image | None,
    body: dict[str, Any],
    seed: int,
    size: tuple[int, int],
) -> Image.Image:
    """The result for one seed (see the module docstring)."""
    base = init.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    picture = Image.open(io.BytesIO(render(str(body["prompt"]), seed, *size, "png"))).convert("RGB")
    strength = denoising(body)
    edited = Image.blend(base, picture, min(1.0, max(0.0, strength)))
    if mask is None:
        return edited
    region = binary_mask(mask, bool(body.get("inpainting_mask_invert")))
    region = region.resize(size, Image.Resampling.NEAREST)
    return Image.composite(edited, base, region)


def denoising(body: dict[str, Any]) -> float:
    value = body.get("denoising_strength")
    return DEFAULT_DENOISING if value is None else float(value)


def echoed(body: dict[str, Any]) -> dict[str, Any]:
    """The ``parameters`` of the answer: the inputs left out unless ``include_init_images``."""
    if body.get("include_init_images"):
        return body
    return body | {"init_images": None, "mask": None}
