"""Only an output small in pixels, not only in bytes, is verified on the event loop: a big
picture of few bytes (a flat 1024x1024 PNG is ~7 KB) is ~30 ms of Pillow work, which on the
loop stalls every stream and request the process serves."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from pixelpipe.worker.output import INLINE_IMAGE_BYTES, _inline


def png(size: tuple[int, int]) -> bytes:
    im = Image.new("RGB", size, "teal")
    ImageDraw.Draw(im).ellipse((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), "red")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_a_big_picture_of_few_bytes_is_not_verified_on_the_event_loop() -> None:
    flat = png((1024, 1024))
    assert len(flat) <= INLINE_IMAGE_BYTES  # small in bytes, yet a megapixel to decode
    assert not _inline(flat)


def test_a_small_picture_is_and_what_is_no_picture_goes_to_the_thread() -> None:
    assert _inline(png((64, 64)))
    assert not _inline(b"not an image")  # the thread's verify says what is wrong with it
    assert not _inline(b"\x89PNG" + bytes(INLINE_IMAGE_BYTES))  # too many bytes: not even read
