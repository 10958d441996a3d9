"""verify_image against real and hostile images."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from PIL import Image

from pixelpipe.errors import ImageInvalid
from pixelpipe.fetch import verify_image, verify_image_async

from .fakes import make_image


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(tag + data))
        return struct.pack(">I", len(data)) + tag + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("pil_format", "mode", "expected", "content_type"),
    [
        ("PNG", "RGBA", "png", "image/png"),
        ("JPEG", "RGB", "jpeg", "image/jpeg"),
        ("WEBP", "RGB", "webp", "image/webp"),
        ("GIF", "P", "gif", "image/gif"),
    ],
)
def test_valid_images(pil_format: str, mode: str, expected: str, content_type: str) -> None:
    data = make_image(pil_format, (120, 80), mode="RGB" if mode == "P" else mode)
    img = verify_image(data)
    assert (img.format, img.width, img.height) == (expected, 120, 80)
    assert img.content_type == content_type
    assert img.data is data
    assert "data=" not in repr(img)


@pytest.mark.parametrize(
    "size",
    [
        (100_000, 100_000),  # far past Pillow's own limit: its DecompressionBombError
        (10_000, 10_000),  # past Pillow's warning threshold: its DecompressionBombWarning
        (8_000, 8_000),  # under Pillow's threshold, over ours (40 Mpx)
    ],
)
def test_decompression_bombs(size: tuple[int, int]) -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageInvalid, match="pixel"):
        verify_image(png_claiming(*size))
    assert before == Image.MAX_IMAGE_PIXELS  # the process-wide setting is left alone


def test_pixel_limit_is_a_parameter() -> None:
    data = make_image("PNG", (100, 100))
    with pytest.raises(ImageInvalid, match="limit"):
        verify_image(data, max_pixels=9_999)
    assert verify_image(data, max_pixels=10_000).width == 100


@pytest.mark.parametrize("pil_format", ["PNG", "JPEG", "WEBP"])
def test_truncated_images(pil_format: str) -> None:
    data = make_image(pil_format, (256, 256), noise=True)
    with pytest.raises(ImageInvalid):
        verify_image(data[: len(data) // 2])


def test_corrupt_png_checksum() -> None:
    data = bytearray(make_image("PNG", (64, 64), noise=True))
    data[-40] ^= 0xFF  # inside the last IDAT
    with pytest.raises(ImageInvalid):
        verify_image(bytes(data))


@pytest.mark.parametrize(
    "data",
    [
        os.urandom(4096),
        b"<html><body>AccessDenied</body></html>",
        b"\x89PNG\r\n\x1a\n" + os.urandom(512),
        b"\xff\xd8\xff" + os.urandom(512),
    ],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageInvalid):
        verify_image(data)


def test_empty_and_zero_size() -> None:
    with pytest.raises(ImageInvalid, match="empty"):
        verify_image(b"")
    with pytest.raises(ImageInvalid):
        verify_image(png_claiming(0, 10))


def test_formats_outside_the_accepted_set() -> None:
    with pytest.raises(ImageInvalid, match="not a recognised image"):
        verify_image(make_image("BMP", (10, 10)))


def test_byte_limit() -> None:
    data = make_image("PNG", (10, 10))
    with pytest.raises(ImageInvalid, match="byte limit"):
        verify_image(data, max_bytes=len(data) - 1)


async def test_async_wrapper() -> None:
    img = await verify_image_async(make_image("WEBP", (30, 20)))
    assert (img.format, img.width, img.height) == ("webp", 30, 20)
    with pytest.raises(ImageInvalid):
        await verify_image_async(b"nope")
