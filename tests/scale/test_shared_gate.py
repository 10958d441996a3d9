"""Provider pauses (429 + Retry-After) and outages shared by every process through Redis.
Each gate has its own notifier and connections: two processes in all but PID."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from pixelpipe.events.redis import RedisNotifier
from pixelpipe.providers.gate import ProviderGate
from pixelpipe.providers.gate_redis import RedisGateBackend

pytestmark = pytest.mark.servers
PROVIDERS = ["fal", "openai", "replicate"]
GateFactory = Callable[[], Awaitable[ProviderGate]]


@pytest.fixture
async def new_gate(redis_url: str) -> AsyncIterator[GateFactory]:
    made: list[tuple[ProviderGate, RedisNotifier]] = []

    async def factory() -> ProviderGate:
        notifier = RedisNotifier(redis_url)
        gate = ProviderGate(RedisGateBackend(notifier))
        await gate.start(PROVIDERS)
        made.append((gate, notifier))
        return gate

    yield factory
    for gate, notifier in made:
        await gate.aclose()
        await notifier.aclose()


async def _eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time limit"
        await asyncio.sleep(0.01)


async def test_a_retry_after_pause_reaches_every_process(new_gate: GateFactory) -> None:
    a, b = await new_gate(), await new_gate()
    assert b.available("replicate")
    a.pause("replicate", 5.0)  # worker A got 429 Retry-After: 5
    await _eventually(lambda: not b.available("replicate"))
    assert 4.0 < b.paused_for("replicate") <= 5.0
    assert b.available("fal")  # other providers are unaffected


async def test_a_process_started_later_loads_pauses_in_force(
    new_gate: GateFactory, redis_url: str
) -> None:
    a = await new_gate()
    a.pause("fal", 30.0)
    a.mark_outage("openai", 20.0)
    await asyncio.sleep(0.2)  # the write is fire-and-forget
    late = await new_gate()
    assert not late.available("fal") and 29.0 < late.paused_for("fal") <= 30.0
    assert not late.available("openai")
    r = aioredis.Redis.from_url(redis_url)
    ttl_ms = await r.pttl("pixelpipe:gate:pause:fal")
    await r.aclose()
    assert 28_000 < ttl_ms <= 30_000  # nothing to clean up: the key expires with the pause


async def test_a_shorter_pause_never_shortens_a_longer_one(new_gate: GateFactory) -> None:
    a, b, c = await new_gate(), await new_gate(), await new_gate()
    a.pause("replicate", 10.0)
    await _eventually(lambda: not c.available("replicate"))
    b.pause("replicate", 1.0)
    await asyncio.sleep(0.3)
    assert c.paused_for("replicate") > 9.0
    late = await new_gate()
    assert late.paused_for("replicate") > 9.0


async def test_pauses_end_on_time_everywhere(new_gate: GateFactory) -> None:
    a, b = await new_gate(), await new_gate()
    a.pause("fal", 0.5)
    await _eventually(lambda: not b.available("fal"))
    await asyncio.sleep(0.6)
    assert a.available("fal") and b.available("fal")
