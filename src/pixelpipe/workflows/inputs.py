"""What a request's input images become in ComfyUI: one file per image slot and mask slot.

Both ComfyUI backends upload these files (natively with ``POST /upload/image`` and
``/upload/mask``, on Comfy API v2 as assets) and render the workflow with the names they get.
Each file's name is derived from its content (``pixelpipe-<sha256>.<ext>``), so a retried job, or
a second job with the same image, writes the same file and loads it again.

The mask follows ComfyUI's convention, which is OpenAI's: a node loading it reads
``1 - alpha``, so the area to change is transparent. :func:`comfy_mask` turns the request's mask
(transparent = change; or, without alpha, white = change) into an RGBA PNG of the first image's
size whose alpha says it and whose grey says it too (white = change), so a LoadImageMask node
reads the same mask from any channel it is set to.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from pixelpipe.workflows.workflow import InputRef, Workflow

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class InputBytes(Protocol):
    """An input image as the providers hold it (:class:`pixelpipe.providers.base.InputImage`)."""

    @property
    def content_type(self) -> str: ...
    @property
    def data(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SlotFile:
    """One file to upload for one input of the workflow. ``alpha_of``: the image this file (a
    mask) becomes the alpha of — ComfyUI's ``/upload/mask`` — instead of being loaded alone."""

    ref: InputRef
    name: str
    data: bytes
    content_type: str
    alpha_of: SlotFile | None = None


class MissingInputs(ValueError):
    """The request has fewer images than the workflow loads (its message says so)."""


def slot_files(
    workflow: Workflow, images: tuple[InputBytes, ...], mask: InputBytes | None
) -> tuple[SlotFile, ...]:
    """The files of ``workflow``'s image and mask inputs for one request, images first. Without
    a mask, a mask input gets one that changes everything (no mask: the whole image may change).
    Raises :class:`MissingInputs` when an image slot would stay empty."""
    slots = workflow.image_slots
    if len(images) < len(slots):
        raise MissingInputs(
            f"the workflow {workflow.source} loads {len(slots)} input image(s) "
            f"({', '.join(map(str, slots))}) and the request has {len(images)}: give "
            f"{len(slots)} image(s) in images"
        )
    files = [_image_file(ref, image) for ref, image in zip(slots, images, strict=False)]
    target = workflow.mask_slot
    if target is None:
        return tuple(files)
    size = _size(images[0].data) if images else None
    mask_png = comfy_mask(mask.data if mask is not None else None, size)
    mask_name = f"pixelpipe-mask-{_sha(mask_png)}.png"
    base = next((f for f in files if f.ref == target), None)
    if base is None:  # a LoadImageMask node (or a LoadImage of its own): the mask alone
        files.append(SlotFile(target, mask_name, mask_png, "image/png"))
        return tuple(files)
    masked = SlotFile(
        target,
        f"pixelpipe-masked-{_sha(base.data + mask_png)}.png",
        mask_png,
        "image/png",
        alpha_of=base,
    )
    return (*(f for f in files if f.ref != target), base, masked)


def comfy_mask(data: bytes | None, size: tuple[int, int] | None) -> bytes:
    """The mask as ComfyUI reads it: RGBA PNG, alpha 0 and white where the image may change,
    alpha 255 and black where it is kept, at ``size`` (the image's; default the mask's own).
    ``None``: change everything."""
    if data is None:
        change = Image.new("L", size or (64, 64), 255)
    else:
        with Image.open(io.BytesIO(data)) as im:
            has_alpha = "A" in im.getbands() or im.info.get("transparency") is not None
            if has_alpha:
                change = im.convert("RGBA").getchannel("A").point(lambda a: 255 - a)
            else:
                change = im.convert("L")
        if size is not None and change.size != size:
            change = change.resize(size, Image.Resampling.BILINEAR)
    keep = change.point(lambda v: 255 - v)
    out = io.BytesIO()
    Image.merge("RGBA", (change, change, change, keep)).save(out, format="PNG")
    return out.getvalue()


def with_alpha(image: bytes, mask_png: bytes) -> bytes:
    """``image`` with ``mask_png``'s alpha, as ComfyUI's ``/upload/mask`` makes it (RGBA PNG):
    for a backend that has no such route (Comfy API v2)."""
    with Image.open(io.BytesIO(image)) as original, Image.open(io.BytesIO(mask_png)) as mask:
        rgba = original.convert("RGBA")
        rgba.putalpha(mask.convert("RGBA").getchannel("A"))
    out = io.BytesIO()
    rgba.save(out, format="PNG", compress_level=4)
    return out.getvalue()


def _image_file(ref: InputRef, image: InputBytes) -> SlotFile:
    ext = _EXTENSIONS.get(image.content_type, "png")
    return SlotFile(ref, f"pixelpipe-{_sha(image.data)}.{ext}", image.data, image.content_type)


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:40]
