"""``check_png`` proves a PNG whole without decoding its pixels, and never refuses: what it does
not prove is None (Pillow's full decode decides). What it accepts Pillow must decode — checked on
PNGs written by Pillow in every mode, on hand-built broken ones, and on thousands of mutations."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from pixelpipe.errors import ImageInvalid
from pixelpipe.fetch.png_check import PNG_SIGNATURE, check_png, png_chunks, scanline_bytes
from pixelpipe.fetch.verify import verify_decoded


def chunk(kind: bytes, payload: bytes, *, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def ihdr(width: int, height: int, depth: int = 8, colour: int = 2, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


def rgb_rows(width: int, height: int, filters: bytes = b"\x00\x01\x02\x03\x04") -> bytes:
    """Raw RGB scanlines, each with a filter type byte taken in turn from ``filters``."""
    rnd = random.Random(width * 1000 + height)
    return b"".join(
        filters[y % len(filters) : y % len(filters) + 1] + rnd.randbytes(width * 3)
        for y in range(height)
    )


def png(
    raw: bytes,
    width: int = 8,
    height: int = 4,
    *,
    head: bytes | None = None,
    splits: int = 1,
    before: bytes = b"",
    after: bytes = b"",
    end: bytes | None = None,
) -> bytes:
    """A PNG of ``raw`` scanlines deflated, in ``splits`` IDAT chunks."""
    stream = zlib.compress(raw)
    step = -(-len(stream) // splits)
    idats = b"".join(chunk(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step))
    tail = chunk(b"IEND", b"") if end is None else end
    return PNG_SIGNATURE + (head or ihdr(width, height)) + before + idats + after + tail


def pillow_png(mode: str, size: tuple[int, int] = (37, 23), **save: object) -> bytes:
    picture = Image.radial_gradient("L").resize(size).convert(mode)
    buf = io.BytesIO()
    picture.save(buf, "PNG", **save)
    return buf.getvalue()


def pillow_decodes(data: bytes) -> bool:
    try:
        verify_decoded(data)
    except ImageInvalid:
        return False
    return True


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_pngs_pillow_writes_are_proven_with_their_size(mode: str) -> None:
    data = pillow_png(mode)
    checked = check_png(data)
    assert checked is not None, mode
    assert (checked.width, checked.height, checked.format) == (37, 23, "png")
    assert checked.data is data and checked.content_type == "image/png"


def test_a_large_image_in_many_idat_chunks_is_proven() -> None:
    raw = rgb_rows(300, 200)
    data = png(raw, 300, 200, splits=9)
    assert check_png(data) is not None and pillow_decodes(data)
    assert check_png(pillow_png("RGB", (1024, 1024))) is not None


def test_a_well_formed_hand_built_png_is_proven() -> None:
    data = png(rgb_rows(8, 4), before=chunk(b"tEXt", b"k\x00v"), after=chunk(b"tIME", bytes(7)))
    assert check_png(data) is not None and pillow_decodes(data)


def _bad_filter() -> bytes:
    return png(rgb_rows(8, 4, filters=b"\x00\x05"))


def _data_after_stream() -> bytes:
    stream = zlib.compress(rgb_rows(8, 4)) + b"extra"
    return PNG_SIGNATURE + ihdr(8, 4) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def _unfinished_stream() -> bytes:
    inflate = zlib.compressobj()
    stream = inflate.compress(rgb_rows(8, 4)) + inflate.flush(zlib.Z_SYNC_FLUSH)
    return PNG_SIGNATURE + ihdr(8, 4) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def _split_idats() -> bytes:
    stream = zlib.compress(rgb_rows(8, 4))
    return (
        PNG_SIGNATURE
        + ihdr(8, 4)
        + chunk(b"IDAT", stream[:10])
        + chunk(b"tEXt", b"k\x00v")
        + chunk(b"IDAT", stream[10:])
        + chunk(b"IEND", b"")
    )


BROKEN = {
    "not a png": pillow_png("RGB")[8:],
    "a jpeg": b"\xff\xd8\xff\xe0" + bytes(64),
    "truncated in the pixels": pillow_png("RGB")[:300],
    "no IEND": png(rgb_rows(8, 4), end=b""),
    "IEND with a payload": png(rgb_rows(8, 4), end=chunk(b"IEND", b"x")),
    "a chunk's CRC is wrong": png(rgb_rows(8, 4), after=chunk(b"tEXt", b"k\x00v", crc=1)),
    "IHDR's CRC is wrong": png(rgb_rows(8, 4), head=chunk(b"IHDR", ihdr(8, 4)[8:21], crc=7)),
    "a filter type of 5": _bad_filter(),
    "one scanline short": png(rgb_rows(8, 3)),
    "one scanline too many": png(rgb_rows(8, 5)),
    "a byte short": png(rgb_rows(8, 4)[:-1]),
    "data after the zlib stream": _data_after_stream(),
    "a zlib stream that never ends": _unfinished_stream(),
    "not zlib at all": PNG_SIGNATURE
    + ihdr(8, 4)
    + chunk(b"IDAT", b"junk" * 9)
    + chunk(b"IEND", b""),
    "no IDAT": PNG_SIGNATURE + ihdr(8, 4) + chunk(b"IEND", b""),
    "IDATs apart": _split_idats(),
    "interlaced": png(rgb_rows(8, 4), head=ihdr(8, 4, interlace=1)),
    "16 bits of palette": png(rgb_rows(8, 4), head=ihdr(8, 4, depth=16, colour=3)),
    "a palette image without PLTE": png(b"\x00" + bytes(8) * 4, head=ihdr(8, 4, colour=3)),
    "no pixels": png(b"", 0, 0, head=ihdr(0, 4)),
    "IHDR not first": PNG_SIGNATURE + chunk(b"tEXt", b"k\x00v") + png(rgb_rows(8, 4))[8:],
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_what_it_cannot_prove_is_left_to_pillow(name: str) -> None:
    assert check_png(BROKEN[name]) is None


def test_over_the_limits_is_left_to_pillow() -> None:
    data = png(rgb_rows(8, 4))
    assert check_png(data) is not None
    assert check_png(data, max_pixels=31) is None
    assert check_png(data, max_bytes=len(data) - 1) is None


def test_a_decompression_bomb_is_never_inflated_past_its_declared_size() -> None:
    # 2 GB of zeros declared as a 64x64 image: refused after at most 64 scanlines + 1 byte
    stream = zlib.compressobj(9)
    payload = b"".join(stream.compress(bytes(1 << 20)) for _ in range(64)) + stream.flush()
    data = PNG_SIGNATURE + ihdr(64, 64) + chunk(b"IDAT", payload) + chunk(b"IEND", b"")
    assert check_png(data) is None


def _with_fixed_crcs(data: bytes) -> bytes:
    """``data`` with every chunk's CRC made to match (so a mutation reaches the inflater)."""
    out, at = bytearray(data[:8]), 8
    while at + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, at)
        end = at + 12 + length
        if end > len(data):
            out += data[at:]
            return bytes(out)
        body = data[at + 4 : end - 4]
        out += data[at : at + 4] + body + struct.pack(">I", zlib.crc32(body))
        at = end
    return bytes(out + data[at:])


@pytest.mark.parametrize("fix_crcs", [False, True])
def test_what_it_accepts_pillow_decodes_under_random_mutation(fix_crcs: bool) -> None:
    rnd = random.Random(17)
    seeds = [pillow_png(m, (19, 11)) for m in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")]
    seeds.append(png(rgb_rows(8, 4), splits=3))
    accepted = 0
    for i in range(3000):
        data = bytearray(seeds[i % len(seeds)])
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(8, len(data))
            data[at] = rnd.randrange(256)
        mutated = _with_fixed_crcs(bytes(data)) if fix_crcs else bytes(data)
        if check_png(mutated) is not None:
            accepted += 1
            assert pillow_decodes(mutated), f"accepted what Pillow refuses: {mutated.hex()}"
    assert accepted > 0  # some mutations are harmless (a pixel's value, an ancillary byte)


def test_filtered_scanlines_with_random_filter_bytes_agree_with_pillow() -> None:
    rnd = random.Random(3)
    for _ in range(300):
        rows = bytearray(rgb_rows(8, 4))
        rows[rnd.randrange(4) * 25] = rnd.choice([0, 1, 2, 3, 4, 5, 9, 255])
        data = png(bytes(rows))
        assert (check_png(data) is not None) == pillow_decodes(data)


@pytest.mark.parametrize(
    ("mode", "bits"), [("1", 1), ("L", 8), ("LA", 16), ("RGB", 24), ("RGBA", 32), ("I;16", 16)]
)
def test_scanline_bytes_is_what_the_pixels_inflate_to(mode: str, bits: int) -> None:
    data = pillow_png(mode, (37, 23))
    inflated = zlib.decompress(b"".join(p for _, p in _idats(data)))
    assert scanline_bytes(data) == len(inflated) == (1 + (37 * bits + 7) // 8) * 23


def test_scanline_bytes_of_what_is_not_a_standard_png_is_none() -> None:
    assert scanline_bytes(b"GIF89a" + bytes(40)) is None
    assert scanline_bytes(PNG_SIGNATURE + ihdr(8, 4, depth=7)) is None  # no such depth
    assert scanline_bytes(PNG_SIGNATURE + ihdr(8, 4)[:10]) is None  # cut short


def _idats(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks = png_chunks(data)
    assert chunks is not None
    return [(kind, bytes(payload)) for kind, payload in chunks if kind == b"IDAT"]
