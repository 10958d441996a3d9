"""Stage 9, for a stream's final image — a PNG proven whole without computing its pixels.

:func:`~pixelpipe.fetch.verify.verify_decoded` decodes every pixel with Pillow: for a 1024×1024
PNG ~8–14 ms, most of it system zlib's inflate. A stream reader waiting for the image need not
wait for that: :func:`check_png` proves what a decode could fail on — the signature, every chunk
whole with its CRC, a standard header (sizes, bit depth and colour type, no interlace), a palette
where one is needed, the image data in one run of ``IDAT`` chunks that inflates (ISA-L, ~1–6 ms)
to exactly the scanlines the header declares, each with a valid filter type, and the ``IEND``.
Unfiltering, the one step left out, cannot fail on such data. Pillow opens its header too, so
the ancillary chunks before the pixels are read the way the later decode reads them.

It never refuses: anything it does not prove (another format, an interlaced PNG, an odd but
perhaps valid file, or a broken one) is ``None``, and Pillow's full decode gives the verdict.
Pillow still decodes every image it accepts, for the thumbnail, before the job succeeds (see
:mod:`pixelpipe.worker.output`). Memory is bounded: the pixels are inflated 16 MiB at a time.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import cast

from isal import isal_zlib

from pixelpipe.errors import PixelpipeError
from pixelpipe.fetch.verify import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, VerifiedImage, open_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IEND_CHUNK = b"\0\0\0\0IEND\xaeB`\x82"  # the last chunk of every PNG: empty, its CRC
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # per colour type
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_FILTER_TYPES = bytes(range(5))  # None, Sub, Up, Average, Paeth
# bytes of scanlines inflated at a time: 2048x2048 RGBA in one call (each call lets the GIL go
# and waits to take it back: up to the 5 ms switch interval on a busy event loop)
_INFLATE_STEP = 16 << 20
_MAX_CHUNK = 2**31 - 1
_Chunk = tuple[bytes, memoryview]  # a chunk's type, and its payload (or its whole span)
# isal's stubs declare its error an instance (``error: Exception``); it is a class
_INFLATE_ERROR = cast(type[Exception], isal_zlib.error)


def check_png(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> VerifiedImage | None:
    """``data`` as a verified PNG when its whole structure checks out; None otherwise (let
    Pillow's full decode say what, if anything, is wrong with it)."""
    if len(data) > max_bytes or not data.startswith(PNG_SIGNATURE):
        return None
    chunks = png_chunks(data)
    if chunks is None or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    standard = depth in _DEPTHS.get(colour, ()) and (compression, filtering, interlace) == (0, 0, 0)
    if not standard or not 0 < width * height <= max_pixels or width > _MAX_CHUNK:
        return None
    image_data = _image_data(chunks, needs_palette=colour == 3)
    stride = _stride(width, depth, colour)
    if image_data is None or not _scanlines_whole(image_data, stride, height):
        return None
    if not _pillow_agrees(data, width, height):
        return None
    return VerifiedImage(data, "png", width, height, "image/png")


def scanline_bytes(data: bytes) -> int | None:
    """How many bytes the PNG ``data``'s header says its pixels inflate to (what checking it
    costs: ~1 ms per 3 MB with ISA-L); None when it does not start as a standard PNG."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour = data[24], data[25]
    if depth not in _DEPTHS.get(colour, ()):
        return None
    return _stride(width, depth, colour) * height


def _stride(width: int, depth: int, colour: int) -> int:
    """Bytes per scanline: its filter type byte, then ``width`` pixels."""
    return 1 + (width * _CHANNELS[colour] * depth + 7) // 8


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One chunk: its length, ``kind``, ``payload`` and their CRC."""
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_chunks(data: bytes) -> list[_Chunk] | None:
    """Every chunk of the PNG ``data`` before ``IEND`` (type, payload), each whole with a
    matching CRC; None if not (a truncated file, a bad CRC, no ``IEND``)."""
    spans = png_chunk_spans(data)
    return None if spans is None else [(kind, span[8:-4]) for kind, span in spans]


def png_chunk_spans(data: bytes) -> list[_Chunk] | None:
    """:func:`png_chunks`, each as its whole span of ``data`` (length, type, payload, CRC)."""
    view = memoryview(data)
    spans: list[_Chunk] = []
    at = len(PNG_SIGNATURE)
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        end = at + 12 + length
        if length > _MAX_CHUNK or end > len(data) or not kind.isalpha():
            return None
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if isal_zlib.crc32(view[at + 4 : end - 4]) != crc:
            return None
        if kind == b"IEND":
            return spans if length == 0 else None
        spans.append((kind, view[at:end]))
        at = end
    return None  # no IEND: truncated


def _image_data(chunks: list[_Chunk], *, needs_palette: bool) -> list[memoryview] | None:
    """The ``IDAT`` payloads, when they are one unbroken run, after a ``PLTE`` if one is needed."""
    kinds = [kind for kind, _ in chunks]
    if b"IDAT" not in kinds:
        return None
    first = kinds.index(b"IDAT")
    run = first
    while run < len(kinds) and kinds[run] == b"IDAT":
        run += 1
    if b"IDAT" in kinds[run:] or (needs_palette and b"PLTE" not in kinds[:first]):
        return None
    return [payload for _, payload in chunks[first:run]]


def _scanlines_whole(image_data: list[memoryview], stride: int, rows: int) -> bool:
    """The zlib stream inflates, and ends, at exactly ``rows`` scanlines of ``stride`` bytes,
    each starting with a valid filter type; nothing follows the stream."""
    expected = stride * rows
    done = 0
    try:
        for piece in _inflated(image_data, expected + 1):
            first = -done % stride  # where the next scanline starts in this piece
            if piece[first::stride].translate(None, _FILTER_TYPES):
                return False
            done += len(piece)
    except _Broken:
        return False
    return done == expected


class _Broken(Exception):
    """The zlib stream is corrupt, unfinished, or followed by more data."""


def _inflated(image_data: list[memoryview], limit: int) -> Iterator[bytes]:
    """The inflated bytes, a step at a time, until the stream ends or ``limit`` is reached."""
    inflate = isal_zlib.decompressobj()
    produced = 0
    for payload in image_data:
        pending: bytes | memoryview = payload
        while produced < limit:
            if inflate.eof:
                if pending or inflate.unused_data:
                    raise _Broken  # data after the stream's end
                break
            try:
                piece = inflate.decompress(pending, min(_INFLATE_STEP, limit - produced))
            except _INFLATE_ERROR as exc:
                raise _Broken from exc
            pending = inflate.unconsumed_tail
            if not piece and not pending:
                break  # it needs the next chunk's bytes
            produced += len(piece)
            yield piece
    if produced < limit and (not inflate.eof or inflate.unused_data):
        raise _Broken  # the stream never ended: truncated


def _pillow_agrees(data: bytes, width: int, height: int) -> bool:
    """Pillow reads the header and the chunks before the pixels as a PNG of that size."""
    try:
        with open_image(data) as im:
            return im.format == "PNG" and im.size == (width, height)
    except PixelpipeError:
        return False
