"""Stage 9 — re-encode a verified image into the requested format, and make gallery thumbnails.

Pillow work is CPU-bound: inside the service call the ``*_async`` variants, which run in a worker
thread so the event loop never stalls. Metadata (EXIF, text chunks) is dropped on re-encode; the
ICC colour profile is kept. Only the first frame of an animated image is kept.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image

from pixelpipe.fetch.verify import CONTENT_TYPES, VerifiedImage, normalise_format, open_image

OUTPUT_FORMATS = ("webp", "png", "jpeg")  # what the store accepts (pixelpipe.key.CONTENT_TYPES)
THUMBNAIL_QUALITY = 80
# libwebp's fastest method: a thumbnail encodes ~20x faster than at the default (4), a few % larger
THUMBNAIL_WEBP_METHOD = 0
THUMBNAIL_MAX_SIDE = 320
# a thumbnail-sized image this light is its own thumbnail (a 320 px WebP thumbnail is ~5-20 KB)
OWN_THUMBNAIL_MAX_BYTES = 48 * 1024
_PIL_NAMES = {"webp": "WEBP", "png": "PNG", "jpeg": "JPEG"}
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
_WHITE = (255, 255, 255)


def to_format(
    img: VerifiedImage, fmt: str, *, quality: int = 90, pixels: Image.Image | None = None
) -> VerifiedImage:
    """``img`` encoded as ``fmt`` (same dimensions); ``img`` itself when already in that format.
    ``pixels``: ``img`` already decoded (:func:`~pixelpipe.fetch.verify.verify_decoded`)."""
    target = normalise_format(fmt)
    if target not in OUTPUT_FORMATS:
        raise ValueError(f"cannot encode {fmt!r}; output formats are {', '.join(OUTPUT_FORMATS)}")
    if img.format == target:
        return img
    with _decoded(img, pixels) as im:
        data = _encode(_prepare(im, target), target, quality, im.info.get("icc_profile"))
    return VerifiedImage(data, target, img.width, img.height, CONTENT_TYPES[target])


@contextmanager
def _decoded(img: VerifiedImage, pixels: Image.Image | None) -> Iterator[Image.Image]:
    if pixels is not None:
        yield pixels
        return
    with open_image(img.data) as im:
        im.load()
        yield im


def thumbnail(
    img: VerifiedImage, *, max_side: int = THUMBNAIL_MAX_SIDE, pixels: Image.Image | None = None
) -> VerifiedImage:
    """A WebP no larger than ``max_side`` on its longest side (never upscaled), aspect kept.
    ``pixels``: the same picture already decoded (not changed here)."""
    if max_side <= 0:
        raise ValueError("max_side must be positive")
    if is_own_thumbnail(img, max_side=max_side):
        return img  # decoding and re-encoding it would change nothing
    with _decoded_for_thumbnail(img, pixels, max_side) as im:
        small = _prepare(im, "webp")
        if small is pixels:
            small = small.copy()  # thumbnail() resizes in place: never the caller's pixels
        # reducing_gap 1.5: a 1024 px image is box-reduced 2x before LANCZOS (~6 ms less CPU
        # per image; the pixels differ from a full LANCZOS by ~0.05 of 255 on average)
        small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=1.5)
        icc = im.info.get("icc_profile")
        data = _encode(small, "webp", THUMBNAIL_QUALITY, icc, method=THUMBNAIL_WEBP_METHOD)
        width, height = small.size
    return VerifiedImage(data, "webp", width, height, CONTENT_TYPES["webp"])


@contextmanager
def _decoded_for_thumbnail(
    img: VerifiedImage, pixels: Image.Image | None, max_side: int
) -> Iterator[Image.Image]:
    if pixels is not None:
        yield pixels
        return
    with open_image(img.data) as im:
        im.draft(None, (max_side * 2, max_side * 2))  # JPEG: decode at a reduced scale
        im.load()
        yield im


def is_own_thumbnail(img: VerifiedImage, *, max_side: int = THUMBNAIL_MAX_SIDE) -> bool:
    """An image within the thumbnail size, and light (:data:`OWN_THUMBNAIL_MAX_BYTES`), already
    is its thumbnail (stored once, see worker): a WebP, PNG or JPEG, each shown by every
    browser; re-encoding it as WebP would spend CPU and a second object to save a few KB."""
    if max(img.width, img.height) > max_side or len(img.data) > OWN_THUMBNAIL_MAX_BYTES:
        return False
    return img.format in ("webp", "png", "jpeg")


async def to_format_async(img: VerifiedImage, fmt: str, *, quality: int = 90) -> VerifiedImage:
    """:func:`to_format` in a worker thread."""
    return await asyncio.to_thread(to_format, img, fmt, quality=quality)


async def thumbnail_async(
    img: VerifiedImage, *, max_side: int = THUMBNAIL_MAX_SIDE
) -> VerifiedImage:
    """:func:`thumbnail` in a worker thread."""
    return await asyncio.to_thread(thumbnail, img, max_side=max_side)


def _prepare(im: Image.Image, target: str) -> Image.Image:
    """A copy (or ``im`` itself) in a pixel mode ``target`` can encode."""
    alpha = im.has_transparency_data
    if target == "jpeg":
        if alpha:
            return _flatten(im)
        return im if im.mode in ("RGB", "L") else im.convert("RGB")
    if target == "webp":
        wanted = "RGBA" if alpha else "RGB"
        return im if im.mode == wanted else im.convert(wanted)
    return im if im.mode in _PNG_MODES else im.convert("RGBA" if alpha else "RGB")


def _flatten(im: Image.Image) -> Image.Image:
    """Composite a transparent image onto white (JPEG has no alpha channel)."""
    rgba = im.convert("RGBA")
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _encode(
    im: Image.Image, fmt: str, quality: int, icc_profile: Any, *, method: int | None = None
) -> bytes:
    params: dict[str, Any] = {"quality": quality} if fmt in ("jpeg", "webp") else {}
    if method is not None:
        params["method"] = method
    if icc_profile:
        params["icc_profile"] = icc_profile
    buffer = io.BytesIO()
    im.save(buffer, format=_PIL_NAMES[fmt], **params)
    return buffer.getvalue()
