"""OpenAI image edits: the multipart body of ``POST /images/edits`` for one request with inputs.

One input goes as ``image``, several as repeated ``image[]`` (as openai-python sends them), each
with a filename and its content type (the API checks both). The mask must be a PNG with an alpha
channel, the first image's size, transparent where to edit: a mask in another convention (no
alpha: white = edit, as A1111's and the page's brush) or of another size is converted here.
"""

from __future__ import annotations

import io

from PIL import Image

from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage, ProviderRequest
from pixelpipe.providers.http import Multipart

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def edit_form(req: ProviderRequest) -> Multipart:
    """The multipart body of ``POST /images/edits`` (``req.images`` must not be empty)."""
    field = "image" if len(req.images) == 1 else "image[]"
    files = [
        (
            field,
            (f"image-{i + 1}.{_EXTENSIONS.get(im.content_type, 'png')}", im.data, im.content_type),
        )
        for i, im in enumerate(req.images)
    ]
    if req.mask is not None:
        files.append(("mask", ("mask.png", openai_mask(req.mask, req.images[0]), "image/png")))
    return Multipart(edit_fields(req.request, req.model_id), tuple(files))


def _file(stem: str, image: InputImage) -> tuple[str, bytes, str]:
    return f"{stem}.{_EXTENSIONS.get(image.content_type, 'png')}", image.data, image.content_type


def edit_fields(req: CanonicalRequest, model_id: str) -> dict[str, str]:
    """The text fields: as a generation's body, as strings (dall-e-2 answers base64 too)."""
    fields = {"model": model_id, "prompt": req.prompt, "n": "1", "size": req.size}
    if model_id.startswith("dall-e"):
        fields["response_format"] = "b64_json"
        return fields
    fields["output_format"] = req.format
    if req.quality:
        fields["quality"] = req.quality
    if req.input_fidelity:
        fields["input_fidelity"] = req.input_fidelity
    return fields


def openai_mask(mask: InputImage, first: InputImage) -> bytes:
    """``mask`` as OpenAI takes it: a PNG with alpha, ``first``'s size, transparent = edit."""
    size = (first.width, first.height)
    with Image.open(io.BytesIO(mask.data)) as im:
        has_alpha = "A" in im.getbands() or "transparency" in im.info
        if has_alpha and im.format == "PNG" and im.size == size:
            return mask.data
        if has_alpha:
            alpha = im.convert("RGBA").getchannel("A")
        else:  # white = edit: transparent there
            alpha = im.convert("L").point(lambda v: 0 if v >= 128 else 255)
    out = Image.new("RGBA", size, (0, 0, 0, 255))
    out.putalpha(alpha.resize(size, Image.Resampling.NEAREST))
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return buf.getvalue()
