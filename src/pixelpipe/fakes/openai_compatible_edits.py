"""The OpenAI-compatible fake's ``POST /v1/images/edits`` (SGLang diffusion, vLLM-Omni): the form
read as they read it, and a result visibly (and deterministically) derived from the inputs.

Facts (sgl-project/sglang ``multimodal_gen/runtime/entrypoints/openai/image_api.py`` ``edits``;
vllm-project/vllm-omni ``docs/serving/image_edit_api.md``): multipart/form-data; the images are
``image`` file parts, repeated for several (SGLang also ``image[]``), or ``url`` fields (not
faked: refused like a missing image); ``prompt`` is required (FastAPI's validation error);
``mask`` is read and ignored by SGLang; ``seed`` defaults to 1024 on SGLang; no image → 422
``Field 'image' or 'url' is required``; an image that does not open → 400 "Failed to process
image source: …". ``size`` absent (or ``auto``): the first image's size. The result here: the
first image at the size, blended half-way towards the prompt's picture, the other images as
thumbnails along its top edge.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from pixelpipe.fakes.openai_multipart import Part
from pixelpipe.fakes.render import render

IMAGE_FIELDS = ("image", "image[]")
SGLANG_DEFAULT_SEED = 1024


class BadImage(ValueError):
    """An image part that does not open: 400 "Failed to process image source: …"."""


@dataclass(frozen=True)
class EditForm:
    fields: dict[str, str]  # the text fields (the last of a repeated one)
    images: list[Image.Image]


def read_form(parts: list[Part]) -> EditForm:
    fields = {p.name: p.text for p in parts if p.filename is None}
    images = []
    for part in parts:
        if part.name in IMAGE_FIELDS and part.filename is not None:
            try:
                with Image.open(io.BytesIO(part.data)) as im:
                    images.append(im.convert("RGB"))
            except Exception as exc:  # what SGLang's save_image_to_path raises, reworded
                raise BadImage(f"Failed to process image source: {exc}") from None
    return EditForm(fields, images)


def derived(images: list[Image.Image], prompt: str, seed: int, size: tuple[int, int]) -> bytes:
    """The edit's PNG (see the module docstring)."""
    w, h = size
    base = images[0].resize(size, Image.Resampling.LANCZOS)
    picture = Image.open(io.BytesIO(render(prompt, seed, w, h, "png"))).convert("RGB")
    out = Image.blend(base, picture, 0.5)
    side = max(4, min(w, h) // 4)
    for i, other in enumerate(images[1:]):
        x = w - (i + 1) * side
        if x < 0:
            break
        out.paste(other.resize((side, side)), (x, 0))
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()
