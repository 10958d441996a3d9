"""Keep-alive comments in a streamed answer: sent after each quiet stretch, never between events
that come in time; the source read in one task at a time and closed with the stream; in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from pixelpipe.api.openai_stream import StreamPlan, stream_response
from pixelpipe.api.openai_stream_keepalive import KEEPALIVE, with_keepalive
from pixelpipe.services import Services
from pixelpipe.usecases.submit import submit
from tests.usecases.conftest import body


class Source:
    """Events after the given pauses; records whether it was closed."""

    def __init__(self, pauses: list[float]) -> None:
        self.pauses = pauses
        self.closed = False

    async def run(self) -> AsyncGenerator[bytes, None]:
        try:
            for i, pause in enumerate(self.pauses):
                await asyncio.sleep(pause)
                yield f"event {i}".encode()
        finally:
            self.closed = True


async def collect(events: AsyncIterator[bytes]) -> list[bytes]:
    return [e async for e in events]


async def test_a_comment_after_each_quiet_stretch_and_none_otherwise() -> None:
    out = await collect(with_keepalive(Source([0.0, 0.35, 0.0]).run(), 0.1))
    assert out[0] == b"event 0" and out[-2:] == [b"event 1", b"event 2"]
    assert set(out[1:-2]) == {KEEPALIVE} and 2 <= len(out[1:-2]) <= 4
    assert KEEPALIVE.startswith(b":") and KEEPALIVE.endswith(b"\n\n")  # an SSE comment

    quick = await collect(with_keepalive(Source([0.01, 0.01]).run(), 0.5))
    assert quick == [b"event 0", b"event 1"]
    never = await collect(with_keepalive(Source([0.25]).run(), 0))  # 0: no keep-alive
    assert never == [b"event 0"]


async def test_a_reader_that_leaves_mid_wait_closes_the_source() -> None:
    source = Source([0.0, 30.0])
    stream = with_keepalive(source.run(), 0.05)
    assert await anext(stream) == b"event 0"
    assert await anext(stream) == KEEPALIVE  # the source is now waiting 30 s
    await asyncio.wait_for(stream.aclose(), 2)  # the reader hangs up: no 30 s wait
    assert source.closed


async def test_a_source_that_fails_fails_the_stream() -> None:
    async def failing() -> AsyncGenerator[bytes, None]:
        yield b"event 0"
        await asyncio.sleep(0.15)
        raise RuntimeError("boom")

    seen: list[bytes] = []

    async def read() -> None:
        async for event in with_keepalive(failing(), 0.05):
            seen.append(event)

    with pytest.raises(RuntimeError, match="boom"):
        await read()
    assert seen[0] == b"event 0" and KEEPALIVE in seen


async def test_a_waiting_image_stream_sends_comments_until_its_error_event(svc: Services) -> None:
    job = (await submit(svc, body("a queued fox"))).job  # no worker: it waits in the queue

    async def disconnected() -> bool:
        return False

    plan = StreamPlan(partial_images=2, timeout_s=0.5, keepalive_s=0.1)
    response = stream_response(svc, job, plan, disconnected, lambda jobs: None)
    chunks = [c if isinstance(c, bytes) else str(c).encode() async for c in response.body_iterator]
    assert chunks[-1].startswith(b"event: error\n")
    assert set(chunks[:-1]) == {KEEPALIVE} and len(chunks) >= 3
