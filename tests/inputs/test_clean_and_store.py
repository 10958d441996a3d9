"""Input images: verified like outputs, metadata stripped, stored content-addressed."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from pixelpipe.errors import InputRejected, NotFound
from pixelpipe.inputs import (
    InputLimits,
    clean_image,
    digest_of_upload_id,
    load_input,
    store_input,
    upload_id,
)
from pixelpipe.storage import MemoryStorage
from tests.inputs.images import GPS_IFD, jpeg_with_gps, picture, png_bomb

LIMITS = InputLimits()


def test_gps_and_camera_exif_are_stripped() -> None:
    raw = jpeg_with_gps()
    with Image.open(io.BytesIO(raw)) as before:
        assert before.getexif().get_ifd(GPS_IFD)  # the test picture does carry a position
    clean = clean_image(raw, LIMITS)
    assert b"ACME Camera" in raw and b"ACME Camera" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as after:
        exif = after.getexif()
        assert not exif.get_ifd(GPS_IFD)
        assert 0x010F not in exif
        assert "exif" not in after.info
        assert after.size == (40, 30) and after.format == "JPEG"


def test_png_text_chunks_are_stripped() -> None:
    from PIL import PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    meta.add_text("Comment", "secret-location")
    out = io.BytesIO()
    Image.new("RGBA", (8, 8), (1, 2, 3, 4)).save(out, format="PNG", pnginfo=meta)
    clean = clean_image(out.getvalue(), LIMITS)
    assert b"secret-location" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as after:
        assert after.getpixel((0, 0)) == (1, 2, 3, 4)  # the pixels are the same


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not a recognised image"),
        (picture("GIF"), "send PNG, JPEG or WebP"),
        (picture("PNG")[:60], "corrupt or truncated"),
    ],
)
def test_what_is_not_an_input_image_is_refused(data: bytes, says: str) -> None:
    with pytest.raises(InputRejected) as err:
        clean_image(data, LIMITS)
    assert says in err.value.detail
    assert err.value.status == 422


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb()
    assert len(bomb) < 100_000
    with pytest.raises(InputRejected, match="pixel"):
        clean_image(bomb, LIMITS)


def test_an_oversize_file_is_refused_with_the_limit() -> None:
    data = picture("PNG", size=(64, 64))
    with pytest.raises(InputRejected, match=r"over the 100-byte limit") as err:
        clean_image(data, InputLimits(max_bytes=100))
    assert err.value.extra["limit_bytes"] == 100


async def test_same_picture_same_key_one_object() -> None:
    storage = MemoryStorage()
    first = await store_input(storage, picture("PNG"), LIMITS)
    again = await store_input(storage, picture("PNG"), LIMITS)
    assert first == again
    assert first.key == f"inputs/{first.digest.removeprefix('sha256:')}.png"
    assert first.id == upload_id(first.digest) and digest_of_upload_id(first.id) == first.digest
    assert list(storage._objects) == [first.key]
    stored = await storage.get(first.key)
    assert first.digest == "sha256:" + hashlib.sha256(stored).hexdigest()


async def test_two_pictures_differing_only_in_exif_are_one_input() -> None:
    storage = MemoryStorage()
    plain = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(plain, format="JPEG")
    with_gps = await store_input(storage, jpeg_with_gps("blue"), LIMITS)
    without = await store_input(storage, plain.getvalue(), LIMITS)
    assert with_gps.width == without.width == 40
    # JPEG is re-encoded from the same pixels: the identity ignores the metadata
    assert with_gps.digest == without.digest


async def test_load_gives_the_stored_bytes_to_a_provider() -> None:
    storage = MemoryStorage()
    stored = await store_input(storage, picture("WEBP", size=(20, 10)), LIMITS)
    image = await load_input(storage, stored.digest)
    assert (image.digest, image.content_type, image.width, image.height) == (
        stored.digest,
        "image/webp",
        20,
        10,
    )
    with pytest.raises(NotFound, match="POST /v1/uploads"):
        await load_input(storage, "sha256:" + "0" * 64)
