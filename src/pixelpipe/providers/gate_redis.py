"""Provider pauses shared by every process through Redis.

A pause is a key ``pixelpipe:gate:<kind>:<provider>`` holding the epoch second it ends, with a
TTL to match (so nothing needs cleaning up), written only if it extends the current one (a Lua
script: check and set are atomic), plus a message on the notifier's ``gate`` channel so processes
that are running learn it at once. Processes that start later read the keys in :meth:`start`.
The local gate keeps answering from memory; Redis being down only means pauses stay local.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from pixelpipe.providers.gate import OUTAGE, PAUSE

if TYPE_CHECKING:
    from pixelpipe.events.redis import RedisNotifier
    from pixelpipe.providers.gate import ProviderGate

log = logging.getLogger("pixelpipe.gate")
KEY = "pixelpipe:gate:{kind}:{provider}"
CHANNEL = "gate"

# KEYS[1] = pause key, KEYS[2] = channel; ARGV = until (epoch s), ttl (ms), message
_EXTEND = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return 1
end
return 0
"""


class RedisGateBackend:
    def __init__(self, notifier: RedisNotifier) -> None:
        self.notifier = notifier
        self.redis: Any = notifier.redis
        self._script: Any = self.redis.register_script(_EXTEND)
        self._tasks: set[asyncio.Task[None]] = set()
        self._follow: asyncio.Task[None] | None = None
        self._gate: ProviderGate | None = None

    async def start(self, gate: ProviderGate, providers: list[str]) -> None:
        self._gate = gate
        keys = [KEY.format(kind=k, provider=p) for p in providers for k in (PAUSE, OUTAGE)]
        try:
            values = await self.redis.mget(keys) if keys else []
        except (RedisError, OSError) as exc:
            log.warning("could not load shared provider pauses (%r)", exc)
            values = []
        for key, value in zip(keys, values, strict=False):
            if value is not None:
                _, _, kind, provider = key.split(":", 3)
                gate.apply(kind, provider, float(value))
        ready = asyncio.Event()
        self._follow = asyncio.create_task(self._follow_changes(ready), name="gate-follow")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 5.0)

    async def _follow_changes(self, ready: asyncio.Event) -> None:
        async with self.notifier.subscribe(CHANNEL) as messages:
            ready.set()
            async for message in messages:
                try:
                    kind, provider, until = message.split(" ")
                    if self._gate is not None and kind in (PAUSE, OUTAGE):
                        self._gate.apply(kind, provider, float(until))
                except ValueError:
                    continue  # "reconnected" or garbage: the keys stay authoritative

    def share(self, kind: str, provider: str, until: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a sync caller): the pause stays local
        task = loop.create_task(self._write(kind, provider, until))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, kind: str, provider: str, until: float) -> None:
        ttl_ms = max(1, int((until - time.time()) * 1000))
        channel = self.notifier.channel_name(CHANNEL)
        try:
            await self._script(
                keys=[KEY.format(kind=kind, provider=provider), channel],
                args=[f"{until:.3f}", ttl_ms, f"{kind} {provider} {until:.3f}"],
            )
        except (RedisError, OSError) as exc:
            log.warning("could not share a %s of %s (%r); it stays local", kind, provider, exc)

    async def ping(self) -> None:
        await self.redis.ping()

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._follow
            self._follow = None
