"""Image-to-image and inpainting in the fake ComfyUI: a picture visibly derived from the upload.

When the sampler's ``latent_image`` comes from a ``VAEEncode`` (or ``VAEEncodeForInpaint``) of a
``LoadImage``, possibly through a ``SetLatentNoiseMask``, the fake's image is the uploaded
picture (centre-cropped to a multiple of 8, as ``VAEEncode`` crops) blended with the usual
deterministic rendering of the prompt and seed by the sampler's ``denoise`` — and, with a mask,
only where the mask says so: outside it, the output's pixels are the input's. The mask is read as
ComfyUI reads it: ``LoadImage``'s MASK output is ``1 - alpha`` (no alpha: nothing is masked, so
nothing changes), ``LoadImageMask`` reads its ``channel`` (``alpha``: ``1 - alpha``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from pixelpipe.fakes.comfyui_graph import find, inputs_of
from pixelpipe.fakes.render import render

LoadInput = Callable[[str], bytes | None]  # a LoadImage value -> the uploaded bytes


@dataclass(frozen=True)
class Source:
    """What an image-to-image graph starts from."""

    image: Image.Image  # RGB
    change: Image.Image | None  # L, 255 where the image may change; None: everywhere
    denoise: float


def source(prompt: dict[str, Any], load: LoadInput) -> Source | None:
    """The graph's input picture, mask and denoise; None for a text-to-image graph."""
    sampler = find(prompt, ("KSampler", "SamplerCustomAdvanced"))
    if sampler is None:
        return None
    node_id, mask_link = _link_node(prompt, inputs_of(prompt, sampler).get("latent_image")), None
    for _ in range(8):
        if node_id is None:
            return None
        kind, inputs = prompt[node_id]["class_type"], inputs_of(prompt, node_id)
        if kind == "SetLatentNoiseMask":
            mask_link, node_id = inputs.get("mask"), _link_node(prompt, inputs.get("samples"))
            continue
        if kind not in ("VAEEncode", "VAEEncodeForInpaint"):
            return None
        mask_link = inputs.get("mask", mask_link)
        image = _image(prompt, inputs.get("pixels"), load)
        if image is None:
            return None
        change = _mask(prompt, mask_link, load, image.size) if mask_link else None
        return Source(image, change, _denoise(prompt, sampler))
    return None


def picture(text: str, seed: int, src: Source) -> bytes:
    """The PNG the graph makes: ``src`` changed by ``denoise`` towards the prompt's picture."""
    w, h = src.image.size
    drawn = Image.open(io.BytesIO(render(text, seed, w, h, "png"))).convert("RGB")
    out = Image.blend(src.image, drawn, max(0.0, min(1.0, src.denoise)))
    if src.change is not None:
        out = Image.composite(out, src.image, src.change)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def _link_node(prompt: dict[str, Any], link: Any) -> str | None:
    if isinstance(link, list) and len(link) == 2 and str(link[0]) in prompt:
        return str(link[0])
    return None


def _loaded(prompt: dict[str, Any], node_id: str, load: LoadInput) -> Image.Image | None:
    data = load(str(inputs_of(prompt, node_id).get("image", "")))
    if data is None:
        return None
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data)))


def _image(prompt: dict[str, Any], link: Any, load: LoadInput) -> Image.Image | None:
    node_id = _link_node(prompt, link)
    if node_id is None or prompt[node_id]["class_type"] != "LoadImage":
        return None
    im = _loaded(prompt, node_id, load)
    if im is None:
        return None
    w, h = im.size
    x, y = (w % 8) // 2, (h % 8) // 2  # VAEEncode's centre crop to a multiple of 8
    return im.convert("RGB").crop((x, y, x + w // 8 * 8, y + h // 8 * 8))


def _mask(
    prompt: dict[str, Any], link: Any, load: LoadInput, size: tuple[int, int]
) -> Image.Image | None:
    node_id = _link_node(prompt, link)
    if node_id is None:
        return None
    kind = prompt[node_id]["class_type"]
    im = _loaded(prompt, node_id, load) if kind in ("LoadImage", "LoadImageMask") else None
    if im is None:
        return None
    channel = "A"
    if kind == "LoadImageMask":
        channel = str(inputs_of(prompt, node_id).get("channel", "alpha"))[0].upper()
    elif "A" not in im.getbands() and "transparency" not in im.info:
        return Image.new("L", size, 0)  # LoadImage without alpha: an empty mask
    band = im.convert("RGBA").getchannel(channel)
    change = band.point(lambda a: 255 - a) if channel == "A" else band
    return change.resize(size) if change.size != size else change


def _denoise(prompt: dict[str, Any], sampler: str) -> float:
    inputs = inputs_of(prompt, sampler)
    if "denoise" not in inputs:
        scheduler = find(prompt, ("BasicScheduler",))
        inputs = inputs_of(prompt, scheduler) if scheduler else {}
    return float(inputs.get("denoise", 1.0))
