"""Keep-alive for a streamed answer: an SSE comment line after every quiet stretch.

A streamed image request can wait minutes in a queue or on a slow provider before its first
event; proxies and load balancers cut a connection that says nothing for a while (often 60 s).
:func:`with_keepalive` passes the events through and, whenever ``every_s`` seconds go by without
one, sends ``: keep-alive`` — a comment, which SSE readers (the OpenAI SDKs, ``EventSource``)
skip. The source is read in one task at a time, never concurrently, and closed with the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

KEEPALIVE = b": keep-alive\n\n"


async def with_keepalive(
    events: AsyncGenerator[bytes, None], every_s: float
) -> AsyncIterator[bytes]:
    """``events``, with :data:`KEEPALIVE` after each ``every_s`` seconds of silence (0: never)."""
    if every_s <= 0:
        async for event in events:
            yield event
        return
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=every_s)
            if not done:
                yield KEEPALIVE
                continue
            finished, pending = pending, None
            try:
                event = finished.result()
            except StopAsyncIteration:
                return
            yield event
    finally:
        await _close(events, pending)


async def _close(
    events: AsyncGenerator[bytes, None], pending: asyncio.Future[bytes] | None
) -> None:
    """Cancel the read under way (the reader left), then close the source."""
    if pending is not None:
        pending.cancel()
        await asyncio.wait({pending})
        if not pending.cancelled():
            pending.exception()  # retrieved: a read that failed as it was cancelled is dropped
    with contextlib.suppress(RuntimeError):  # still running: the cancelled read closes it
        await events.aclose()
