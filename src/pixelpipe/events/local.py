"""In-process notifier (embedded mode): one bounded queue per subscriber."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator


class LocalNotifier:
    def __init__(self, queue_size: int = 256) -> None:
        self._subs: defaultdict[str, set[asyncio.Queue[str]]] = defaultdict(set)
        self._size = queue_size

    async def publish(self, channel: str, message: str) -> None:
        for q in tuple(self._subs.get(channel, ())):
            with contextlib.suppress(asyncio.QueueFull):
                # a slow listener loses wake-ups, never events: it re-reads the store
                q.put_nowait(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        q: asyncio.Queue[str] = asyncio.Queue(self._size)
        self._subs[channel].add(q)
        try:
            yield _drain(q)
        finally:
            self._subs[channel].discard(q)
            if not self._subs[channel]:
                self._subs.pop(channel, None)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._subs.clear()


class Wakeups:
    """The wake-ups of one subscription. A class, not an async generator: a listener that waits
    with a timeout (``wait_for(anext(w), 5)``) cancels ``__anext__``, and a cancelled generator
    would be finished for good — every later ``anext`` raising StopAsyncIteration."""

    def __init__(self, q: asyncio.Queue[str]) -> None:
        self._q = q

    def __aiter__(self) -> Wakeups:
        return self

    async def __anext__(self) -> str:
        return await self._q.get()


def _drain(q: asyncio.Queue[str]) -> AsyncIterator[str]:
    return Wakeups(q)
