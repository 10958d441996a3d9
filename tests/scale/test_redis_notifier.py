"""RedisNotifier against a real redis-server: cross-process fan-out over ONE subscriber
connection per process, clean unsubscribes, recovery after the connection is cut, and a publish
that never raises. Two notifier instances stand for two processes (separate connections)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from pixelpipe.events.redis import PREFIX, RECONNECTED, RedisNotifier

pytestmark = pytest.mark.servers


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[RedisNotifier, RedisNotifier]]:
    a, b = RedisNotifier(redis_url), RedisNotifier(redis_url)
    yield a, b
    await a.aclose()
    await b.aclose()


async def _pubsub_clients(url: str) -> int:
    r = aioredis.Redis.from_url(url)
    try:
        return len(await r.client_list(_type="pubsub"))
    finally:
        await r.aclose()


async def _subscribers(url: str, channel: str) -> int:
    r = aioredis.Redis.from_url(url)
    try:
        return int(dict(await r.pubsub_numsub(PREFIX + channel))[(PREFIX + channel).encode()])
    finally:
        await r.aclose()


async def test_a_subscriber_in_one_process_hears_a_publish_from_another(
    pair: tuple[RedisNotifier, RedisNotifier],
) -> None:
    worker, api = pair
    async with api.subscribe("job:1") as wakeups:
        await worker.publish("job:1", "changed")
        assert await asyncio.wait_for(anext(wakeups), 2) == "changed"


async def test_many_local_subscribers_share_one_connection(
    pair: tuple[RedisNotifier, RedisNotifier], redis_url: str
) -> None:
    worker, api = pair
    async with contextlib.AsyncExitStack() as stack:
        streams = [
            await stack.enter_async_context(api.subscribe(f"job:{i % 10}")) for i in range(50)
        ]
        assert await _pubsub_clients(redis_url) == 1  # 50 browsers, 10 channels, 1 connection
        assert await _subscribers(redis_url, "job:3") == 1
        for i in range(10):
            await worker.publish(f"job:{i}", f"m{i}")
        got = await asyncio.gather(*(asyncio.wait_for(anext(s), 2) for s in streams))
        assert got == [f"m{i % 10}" for i in range(50)]
    await asyncio.sleep(0.1)
    assert await _subscribers(redis_url, "job:3") == 0  # the last one out unsubscribed


async def test_subscribers_recover_after_the_connection_is_cut(
    pair: tuple[RedisNotifier, RedisNotifier], redis_url: str
) -> None:
    worker, api = pair
    async with api.subscribe("job:9") as wakeups:
        admin = aioredis.Redis.from_url(redis_url)
        await admin.client_kill_filter(_type="pubsub")
        await admin.aclose()
        # after the gap every local subscriber is told to re-read the store ...
        assert await asyncio.wait_for(anext(wakeups), 10) == RECONNECTED
        # ... and later messages flow again
        await worker.publish("job:9", "after")
        assert await asyncio.wait_for(anext(wakeups), 5) == "after"


async def test_publish_never_raises_when_redis_is_down() -> None:
    from tests.servers._process import free_port

    dead = RedisNotifier(f"redis://127.0.0.1:{free_port()}/0")
    await dead.publish("job:1", "changed")  # a step must not fail because a wake-up was lost
    assert dead.publish_errors == 1
    with pytest.raises(Exception):  # noqa: B017 - readiness does see it
        await dead.ping()
    await dead.aclose()
