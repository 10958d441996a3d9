"""An edit's mask in the convention of the servers that paint where the mask is **white**.

pixelpipe takes OpenAI's masks: a PNG with an alpha channel, **transparent = edit** (what the
``/v1/images/edits`` endpoint, the SDK and the page's brush send). AUTOMATIC1111 / Forge
(``img2img`` ``mask``) and the inpainting cog predictors (Replicate's SDXL: "black areas will be
preserved, white areas will be inpainted") take the inverse: a black-and-white picture, **white =
repaint**. Worse, A1111 reads an RGBA mask's *alpha* as the mask (``create_binary_mask``): an
OpenAI mask sent as it is would repaint exactly the part meant to be kept. So every such backend
gets :func:`white_repaint_png` of the mask. A mask without alpha (or fully opaque) is taken as
already white = edit, as the offline preview reads it (``providers/preview/edit.py``).
"""

from __future__ import annotations

import io

from PIL import Image

from pixelpipe.providers.base import InputImage

THRESHOLD = 128  # alpha below it is transparent (edit); grey at or above it is white (edit)


def white_repaint_png(mask: InputImage) -> bytes:
    """The mask as an 8-bit grey PNG of the same size: 255 where the edit goes, 0 elsewhere."""
    with Image.open(io.BytesIO(mask.data)) as im:
        if _has_alpha(im):
            alpha = im.convert("RGBA").getchannel("A")
            region = alpha.point(lambda a: 255 if a < THRESHOLD else 0)
        else:
            region = im.convert("L").point(lambda v: 255 if v >= THRESHOLD else 0)
    out = io.BytesIO()
    region.save(out, format="PNG")
    return out.getvalue()


def _has_alpha(im: Image.Image) -> bool:
    """An alpha channel that says something: a fully opaque one is no OpenAI mask (it would edit
    nothing), so it is read as a black-and-white picture."""
    if "A" not in im.getbands() and im.info.get("transparency") is None:
        return False
    lowest = im.convert("RGBA").getchannel("A").getextrema()[0]
    return isinstance(lowest, int | float) and lowest < 255
