"""Cross-process notifier: Redis pub/sub, ONE subscriber connection per process.

``publish`` is a plain ``PUBLISH`` on the shared client pool. Local subscribers (SSE streams, the
provider gate) register in-process queues; the first local subscriber of a channel makes the
process's single pub/sub connection ``SUBSCRIBE`` to it, the last one leaving unsubscribes, and one
reader task fans every message out to the local queues. So a browser connected to API process B
hears about the job that worker process A just finished, without a Redis connection per browser.

Notifications are wake-ups, never the data: events live in ``job_events`` and SSE streams replay
them from the store (``Last-Event-ID``). A lost message (Redis restart, a slow listener) costs
latency only — SSE streams re-read the store on a timer, and after a reconnect every local
subscriber gets a synthetic wake-up so it re-reads at once. Publishing never raises: a job step
must not fail because a wake-up could not be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pixelpipe.events.local import Wakeups

log = logging.getLogger("pixelpipe.events.redis")

PREFIX = "pixelpipe:ev:"
CONTROL = PREFIX + "_control"  # always subscribed, so the reader never idles on no channel
RECONNECTED = "reconnected"  # the message local subscribers get after a gap


class RedisNotifier:
    def __init__(self, url: str, *, queue_size: int = 256, prefix: str = PREFIX) -> None:
        self.redis: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=5.0,
            socket_connect_timeout=2.0,
            health_check_interval=15,
            retry_on_timeout=True,
        )
        self._prefix = prefix
        self._size = queue_size
        self._subs: defaultdict[str, set[asyncio.Queue[str]]] = defaultdict(set)
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._closed = False
        self.published = 0
        self.publish_errors = 0
        self._last_error_log = 0.0

    # ---- producer ------------------------------------------------------------------------------
    async def publish(self, channel: str, message: str) -> None:
        try:
            await self.redis.publish(self._prefix + channel, message)
            self.published += 1
        except (RedisError, OSError) as exc:
            self.publish_errors += 1
            now = time.monotonic()
            if now - self._last_error_log > 10:
                self._last_error_log = now
                log.warning("could not publish a wake-up to Redis (%r); listeners will poll", exc)

    # ---- consumers -----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        await self._ensure_reader()
        q: asyncio.Queue[str] = asyncio.Queue(self._size)
        first = not self._subs[channel]
        self._subs[channel].add(q)
        try:
            if first:
                await self._redis_subscribe(channel)
            yield _drain(q)
        finally:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    self._subs.pop(channel, None)
                    await self._redis_unsubscribe(channel)

    def channel_name(self, channel: str) -> str:
        """The Redis channel a local channel name maps to (for publishers outside this class)."""
        return self._prefix + channel

    async def ping(self) -> None:
        await self.redis.ping()

    async def aclose(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        self._subs.clear()
        await self.redis.aclose()

    # ---- internals -----------------------------------------------------------------------------
    async def _ensure_reader(self) -> None:
        if self._reader is not None:
            return
        async with self._start_lock:
            if self._reader is not None:
                return
            self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            await self._pubsub.subscribe(CONTROL)
            self._watch_reconnects()
            self._reader = asyncio.create_task(self._read(), name="redis-notifier-reader")

    async def _redis_subscribe(self, channel: str) -> None:
        try:
            await self._pubsub.subscribe(self._prefix + channel)
        except (RedisError, OSError) as exc:
            # the reader resubscribes everything it knows of once Redis is back
            log.warning("could not subscribe to %s (%r); will retry on reconnect", channel, exc)

    async def _redis_unsubscribe(self, channel: str) -> None:
        if self._closed or self._pubsub is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.unsubscribe(self._prefix + channel)

    async def _read(self) -> None:
        backoff = 0.1
        healthy = True
        while not self._closed:
            if not healthy:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                healthy = await self._resubscribe()
                continue
            try:
                msg = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
            except (RedisError, OSError) as exc:
                log.warning("Redis subscriber connection lost (%r); reconnecting", exc)
                healthy = False
                continue
            if msg is None or msg.get("type") != "message":
                continue
            channel = _text(msg["channel"])
            if channel.startswith(self._prefix):
                self._deliver(channel[len(self._prefix) :], _text(msg["data"]))

    async def _resubscribe(self) -> bool:
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await self._pubsub.subscribe(CONTROL, *(self._prefix + c for c in list(self._subs)))
        except (RedisError, OSError):
            return False  # still down: the reader loop retries
        self._watch_reconnects()
        await self._on_reconnect(None)
        return True

    def _watch_reconnects(self) -> None:
        """redis-py reconnects (and resubscribes) by itself after short outages; hear about it."""
        conn = getattr(self._pubsub, "connection", None)
        if conn is not None:
            conn.register_connect_callback(self._on_reconnect)

    async def _on_reconnect(self, _connection: object) -> None:
        log.info("Redis subscriber connection restored")
        for channel in list(self._subs):
            self._deliver(channel, RECONNECTED)  # messages may have been missed: re-read now

    def _deliver(self, channel: str, message: str) -> None:
        for q in tuple(self._subs.get(channel, ())):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(message)  # a slow listener loses wake-ups, never events


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _drain(q: asyncio.Queue[str]) -> AsyncIterator[str]:
    return Wakeups(q)  # survives a cancelled anext() (see events/local.py)
