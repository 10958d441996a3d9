"""Notifier contract, for the in-process notifier and Redis pub/sub (two instances = two
processes). SSE streams rely on every property here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pixelpipe.events.base import Notifier
from pixelpipe.events.local import LocalNotifier


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.servers)])
async def notifiers(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Notifier, Notifier]]:
    """(publisher, subscriber side): the same object in-process, two processes' worth on Redis."""
    if request.param == "local":
        local = LocalNotifier()
        yield local, local
        await local.aclose()
        return
    from pixelpipe.events.redis import RedisNotifier

    url = request.getfixturevalue("redis_url")
    a, b = RedisNotifier(url), RedisNotifier(url)
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_subscribers_hear_their_channel_only(notifiers: tuple[Notifier, Notifier]) -> None:
    pub, sub = notifiers
    async with sub.subscribe("job:a") as a, sub.subscribe("job:b") as b:
        await pub.publish("job:a", "1")
        assert await asyncio.wait_for(anext(a), 2) == "1"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(b), 0.2)


async def test_a_timed_out_wait_leaves_the_subscription_usable(
    notifiers: tuple[Notifier, Notifier],
) -> None:
    """SSE streams wait with a timeout and re-read the store; the next wake-up must still come."""
    pub, sub = notifiers
    async with sub.subscribe("job:x") as wakeups:
        for round_ in range(3):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(wakeups), 0.05)
            await pub.publish("job:x", f"r{round_}")
            assert await asyncio.wait_for(anext(wakeups), 2) == f"r{round_}"


async def test_every_subscriber_of_a_channel_hears_each_message(
    notifiers: tuple[Notifier, Notifier],
) -> None:
    pub, sub = notifiers
    async with sub.subscribe("all") as one, sub.subscribe("all") as two:
        for i in range(5):
            await pub.publish("all", f"job{i}")
        for stream in (one, two):
            got = [await asyncio.wait_for(anext(stream), 2) for _ in range(5)]
            assert got == [f"job{i}" for i in range(5)]


async def test_ping_answers(notifiers: tuple[Notifier, Notifier]) -> None:
    for n in notifiers:
        await n.ping()
