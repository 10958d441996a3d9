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


def _chunk_types(png: bytes) -> list[bytes]:
    from pixelpipe.fetch.png_check import png_chunks

    chunks = png_chunks(png)
    assert chunks is not None
    return [kind for kind, _ in chunks]


def _png_with_metadata(exif: Image.Exif | None = None) -> bytes:
    from PIL import ImageCms, PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    meta.add_text("Comment", "secret-location")
    meta.add_itxt("Author", "someone private", zip=True)
    meta.add(b"prIv", b"a private chunk")
    meta.add(b"tIME", bytes([7, 234, 12, 6, 8, 0, 0]))
    picture = Image.radial_gradient("L").convert("RGB").resize((48, 32))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    # compress_level 1: a re-encode (at the default level) would give other IDAT bytes
    options = {"pnginfo": meta, "icc_profile": srgb, "exif": exif or Image.Exif()}
    picture.save(out, format="PNG", compress_level=1, **options)
    return out.getvalue()


def test_an_upright_png_keeps_its_pixel_bytes_and_only_the_colour_chunks() -> None:
    exif = Image.Exif()
    exif[0x010F] = "ACME Camera"  # a maker, no orientation
    raw = _png_with_metadata(exif)
    assert {b"tEXt", b"iTXt", b"prIv", b"tIME", b"eXIf", b"iCCP"} <= set(_chunk_types(raw))
    clean = clean_image(raw, LIMITS)
    assert _chunk_types(clean.data) == [b"IHDR", b"iCCP", b"IDAT"]  # and IEND
    for secret in (b"secret-location", b"ACME Camera", b"a private chunk"):
        assert secret not in clean.data
    idat = raw[raw.index(b"IDAT") : raw.index(b"IEND")]
    assert idat in clean.data  # the same compressed pixels: not re-encoded
    with Image.open(io.BytesIO(raw)) as before, Image.open(io.BytesIO(clean.data)) as after:
        assert after.tobytes() == before.tobytes() and after.size == (48, 32)
        assert after.info["icc_profile"] == before.info["icc_profile"]
    assert (clean.width, clean.height, clean.format) == (48, 32, "png")


def test_a_png_its_exif_turns_is_re_encoded_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    clean = clean_image(_png_with_metadata(exif), LIMITS)
    assert b"secret-location" not in clean.data and b"eXIf" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as after:
        assert after.size == (32, 48)  # turned into the pixels


def test_an_animated_png_is_re_encoded_as_its_first_frame() -> None:
    out = io.BytesIO()
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    frames[0].save(out, format="PNG", save_all=True, append_images=frames[1:])
    assert b"acTL" in out.getvalue()
    clean = clean_image(out.getvalue(), LIMITS)
    assert b"acTL" not in clean.data and b"fdAT" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as after:
        assert after.getpixel((0, 0)) == (255, 0, 0)


async def test_two_pngs_differing_only_in_metadata_are_one_input() -> None:
    storage = MemoryStorage()
    exif = Image.Exif()
    exif[0x010F] = "ACME Camera"
    tagged = await store_input(storage, _png_with_metadata(exif), LIMITS)
    plain = await store_input(storage, _png_with_metadata(), LIMITS)
    assert tagged.digest == plain.digest


def _with_iccp(png: bytes, payload: bytes) -> bytes:
    """``png`` with an ``iCCP`` chunk of ``payload`` right after its header."""
    import struct
    import zlib

    crc = zlib.crc32(b"iCCP" + payload)
    chunk = struct.pack(">I", len(payload)) + b"iCCP" + payload + struct.pack(">I", crc)
    return png[:33] + chunk + png[33:]  # signature (8) + IHDR (25)


def test_the_icc_profiles_own_name_and_an_unreadable_profile_are_not_kept() -> None:
    import zlib

    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 8, 7)).save(out, format="PNG", compress_level=1)
    named = _with_iccp(out.getvalue(), b"secret-location\0\0" + zlib.compress(srgb))
    clean = clean_image(named, LIMITS)
    assert b"secret-location" not in clean.data  # the name is free text: Pillow's instead
    with Image.open(io.BytesIO(clean.data)) as after:
        assert after.info["icc_profile"] == srgb and after.getpixel((0, 0)) == (9, 8, 7)
    broken = clean_image(_with_iccp(out.getvalue(), b"p\0\0not zlib at all"), LIMITS)
    assert b"iCCP" not in broken.data and b"not zlib" not in broken.data  # dropped, as Pillow does
