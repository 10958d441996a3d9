"""The offline preview of an edit: a picture visibly derived from the input images, locally.

The first input image is fitted (cropped to the aspect ratio, resized) to the requested size and
tinted with a colour and a few shapes drawn from the prompt and seed, more strongly where the mask
says to edit; the other inputs are shown as thumbnails along the top edge; a label says it is a
preview. Same inputs, mask, prompt, seed and strength → same bytes. Not AI, $0.
"""

from __future__ import annotations

import hashlib
import io
import random

from PIL import Image, ImageDraw, ImageOps

from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage

_PIL_FORMAT = {"webp": "WEBP", "png": "PNG", "jpeg": "JPEG"}
_ENCODER: dict[str, dict[str, int]] = {
    "WEBP": {"quality": 85, "method": 0},
    "JPEG": {"quality": 85},
    "PNG": {"compress_level": 1},
}
DEFAULT_STRENGTH = 0.5  # how strongly the prompt's tint covers the edited area without ``strength``


def render_edit_preview(
    req: CanonicalRequest, images: tuple[InputImage, ...], mask: InputImage | None
) -> bytes:
    """Draw the edit's preview at the requested size and format (``images`` must not be empty)."""
    size = (req.width, req.height)
    rng = random.Random(_seed(req, images, mask))
    base = _fit(images[0], size).convert("RGB")
    overlay = _overlay(rng, size)
    strength = DEFAULT_STRENGTH if req.strength is None else req.strength
    edited = Image.blend(base, overlay, 0.15 + 0.6 * strength)
    if mask is None:
        img = edited
    else:
        region = edit_region(mask, size)
        img = Image.composite(edited, Image.blend(base, overlay, 0.08), region)
        _outline(img, region, overlay.getpixel((0, 0)))
    _thumbnails(img, images[1:])
    if min(size) >= 128:
        _label(img, req.prompt, len(images), mask is not None)
    buf = io.BytesIO()
    fmt = _PIL_FORMAT[req.format]
    img.save(buf, fmt, **_ENCODER[fmt])
    return buf.getvalue()


def edit_region(mask: InputImage, size: tuple[int, int]) -> Image.Image:
    """Where to edit, as an "L" image of ``size`` (255 = edit): a mask with alpha (OpenAI's
    convention) edits where it is transparent; one without (A1111's) where it is white."""
    with Image.open(io.BytesIO(mask.data)) as im:
        if "A" in im.getbands() or im.info.get("transparency") is not None:
            alpha = im.convert("RGBA").getchannel("A")
            region = alpha.point(lambda a: 255 if a < 128 else 0)
        else:
            region = im.convert("L").point(lambda v: 255 if v >= 128 else 0)
    return ImageOps.fit(region, size, Image.Resampling.NEAREST)


def _seed(req: CanonicalRequest, images: tuple[InputImage, ...], mask: InputImage | None) -> int:
    parts = [req.prompt, str(req.seed), *(i.digest for i in images), mask.digest if mask else ""]
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")


def _fit(image: InputImage, size: tuple[int, int]) -> Image.Image:
    with Image.open(io.BytesIO(image.data)) as im:
        return ImageOps.fit(im.convert("RGBA"), size, Image.Resampling.BILINEAR)


def _overlay(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """The prompt's colour with a few shapes: what the "edit" paints over the input."""
    w, h = size
    colour = tuple(rng.randrange(40, 230) for _ in range(3))
    overlay = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(overlay)
    for _ in range(2 + rng.randrange(4)):
        x, y = rng.randrange(w), rng.randrange(h)
        r = rng.randrange(max(4, min(w, h) // 12), max(8, min(w, h) // 4))
        fill = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.6 else draw.rectangle)((x - r, y - r, x + r, y + r), fill)
    overlay.putpixel((0, 0), colour)  # the tint, read back for the mask's outline
    return overlay


def _outline(img: Image.Image, region: Image.Image, colour: object) -> None:
    box = region.getbbox()
    if box is None:
        return
    width = max(1, min(img.size) // 128)
    ImageDraw.Draw(img).rectangle(box, outline=(255, 255, 255), width=width + 1)
    inner = (box[0] + width + 1, box[1] + width + 1, box[2] - width - 1, box[3] - width - 1)
    if inner[0] < inner[2] and inner[1] < inner[3]:
        ImageDraw.Draw(img).rectangle(inner, outline=colour, width=width)  # type: ignore[arg-type]


def _thumbnails(img: Image.Image, others: tuple[InputImage, ...]) -> None:
    side = max(8, min(img.size) // 6)
    for i, other in enumerate(others):
        x = img.width - (i + 1) * (side + 4)
        if x < 0:
            break
        img.paste(_fit(other, (side, side)).convert("RGB"), (x, 4))


def _label(img: Image.Image, prompt: str, n_images: int, masked: bool) -> None:
    w, h = img.size
    size = max(10, min(w, h) // 28)
    draw = ImageDraw.Draw(img, "RGBA")
    inputs = f"{n_images} image{'s' if n_images > 1 else ''}" + (" + mask" if masked else "")
    draw.rectangle((0, h - size * 4, w, h), fill=(0, 0, 0, 150))
    draw.text(
        (size, h - size * 3.6), f"PREVIEW edit of {inputs} - not AI", fill="white", font_size=size
    )
    snippet = prompt if len(prompt) <= 60 else prompt[:57] + "..."
    draw.text((size, h - size * 2.1), snippet, fill=(230, 230, 230, 255), font_size=size * 0.8)
