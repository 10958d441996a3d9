"""to_format and thumbnail keep images sane; the async variants leave the event loop free."""

from __future__ import annotations

import io
import os
import threading

import pytest
from PIL import Image

from pixelpipe.fetch import (
    VerifiedImage,
    thumbnail,
    thumbnail_async,
    to_format,
    to_format_async,
    transcode,
    verify_image,
)
from pixelpipe.fetch.transcode import OWN_THUMBNAIL_MAX_BYTES

from .fakes import make_image


def transparent_png(size: tuple[int, int] = (40, 30)) -> VerifiedImage:
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    im.putpixel((0, 0), (255, 0, 0, 255))
    buffer = io.BytesIO()
    im.save(buffer, format="PNG")
    return verify_image(buffer.getvalue())


@pytest.mark.parametrize(("fmt", "expected"), [("webp", "webp"), ("jpeg", "jpeg"), ("JPG", "jpeg")])
def test_png_to_other_formats_keeps_size(fmt: str, expected: str) -> None:
    source = verify_image(make_image("PNG", (123, 77), mode="RGBA"))
    out = to_format(source, fmt)
    assert (out.format, out.width, out.height) == (expected, 123, 77)
    again = verify_image(out.data)  # the output is itself a valid image of that kind
    assert (again.format, again.width, again.height) == (expected, 123, 77)
    assert out.content_type == again.content_type


def test_jpeg_flattens_transparency_onto_white() -> None:
    out = to_format(transparent_png(), "jpeg")
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.mode == "RGB"
        r, g, b = im.convert("RGB").getpixel((20, 20))  # type: ignore[misc]
        assert min(r, g, b) > 240


def test_webp_keeps_transparency() -> None:
    out = to_format(transparent_png(), "webp")
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.mode == "RGBA"
        assert im.getpixel((20, 20))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize(("pil_format", "mode"), [("GIF", "RGB"), ("JPEG", "L"), ("PNG", "LA")])
def test_other_modes_convert(pil_format: str, mode: str) -> None:
    source = verify_image(make_image(pil_format, (50, 40), mode=mode))
    for fmt in ("webp", "jpeg", "png"):
        out = to_format(source, fmt)
        assert (verify_image(out.data).format, out.width, out.height) == (fmt, 50, 40)


def test_same_format_is_a_no_op() -> None:
    source = verify_image(make_image("WEBP", (10, 10)))
    assert to_format(source, "webp") is source


def test_unknown_output_format() -> None:
    source = verify_image(make_image("PNG", (10, 10)))
    with pytest.raises(ValueError, match="output formats"):
        to_format(source, "tiff")


@pytest.mark.parametrize(
    ("pil_format", "size", "expected"),
    [
        ("PNG", (800, 400), (320, 160)),
        ("JPEG", (1000, 750), (320, 240)),
        ("WEBP", (300, 900), (107, 320)),
        ("GIF", (100, 50), (100, 50)),  # never upscaled (a GIF is never its own thumbnail)
    ],
)
def test_thumbnail(pil_format: str, size: tuple[int, int], expected: tuple[int, int]) -> None:
    thumb = thumbnail(verify_image(make_image(pil_format, size)))
    assert (thumb.format, thumb.content_type) == ("webp", "image/webp")
    assert (thumb.width, thumb.height) == expected
    checked = verify_image(thumb.data)
    assert (checked.width, checked.height) == expected


def test_a_small_light_image_is_its_own_thumbnail_and_a_large_or_heavy_one_is_not() -> None:
    for fmt in ("WEBP", "PNG", "JPEG"):
        small = verify_image(make_image(fmt, (64, 48)))
        assert thumbnail(small) is small  # nothing to shrink, light: no re-encode, one object
    large = verify_image(make_image("WEBP", (640, 480)))
    thumb = thumbnail(large)
    assert thumb is not large and (thumb.width, thumb.height) == (320, 240)
    # thumbnail-sized but heavy (noise: a 300 px PNG of ~270 KB): shrunk to a light WebP
    noise = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    heavy = verify_image(buf.getvalue())
    assert len(heavy.data) > OWN_THUMBNAIL_MAX_BYTES
    thumb = thumbnail(heavy)
    assert thumb.format == "webp" and (thumb.width, thumb.height) == (300, 300)


def test_thumbnail_max_side() -> None:
    thumb = thumbnail(verify_image(make_image("PNG", (640, 480))), max_side=64)
    assert max(thumb.width, thumb.height) == 64


async def test_async_wrappers_run_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    source = verify_image(make_image("PNG", (200, 100)))
    seen: list[int] = []
    real = transcode.to_format

    def spy(img: VerifiedImage, fmt: str, *, quality: int = 90) -> VerifiedImage:
        seen.append(threading.get_ident())
        return real(img, fmt, quality=quality)

    monkeypatch.setattr(transcode, "to_format", spy)
    out = await to_format_async(source, "jpeg", quality=70)
    assert out.format == "jpeg"
    assert len(seen) == 1
    assert seen[0] != threading.get_ident()
    thumb = await thumbnail_async(source, max_side=50)
    assert (thumb.width, thumb.height) == (50, 25)
