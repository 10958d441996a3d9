"""The in-process partial hub (``events/partials.py``): a subscriber gets what is published for
its job from then on, in order; one that never reads holds at most ``keep`` partials (the oldest
dropped, publishing never waits); a job's entry is gone once nobody subscribes."""

from __future__ import annotations

import asyncio

from pixelpipe.events.partials import Final, Partial, PartialHub


def _partial(i: int) -> Partial:
    return Partial(f"b64-{i}", "png", i, float(i))


async def test_subscribers_get_their_jobs_partials_in_order() -> None:
    hub = PartialHub()
    assert hub.publish("job_a", _partial(0)) == 0  # nobody subscribes: nothing kept
    assert hub.jobs() == 0
    async with hub.subscribe("job_a") as a1, hub.subscribe("job_a") as a2, hub.subscribe("b") as b:
        assert hub.jobs() == 2
        assert hub.publish("job_a", _partial(1)) == 2
        hub.publish("job_a", _partial(2))
        assert [await anext(a1), await anext(a1)] == [_partial(1), _partial(2)]
        assert [await anext(a2), await anext(a2)] == [_partial(1), _partial(2)]
        waiting = asyncio.ensure_future(anext(b))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # another job's partials are not b's
        hub.publish("b", _partial(3))
        assert await asyncio.wait_for(waiting, 1) == _partial(3)
    assert hub.jobs() == 0


async def test_a_subscriber_that_never_reads_holds_at_most_keep_and_publish_never_waits() -> None:
    hub = PartialHub(keep=2)
    async with hub.subscribe("job_a") as stalled, hub.subscribe("job_a") as reader:
        got = []
        for i in range(500):
            hub.publish("job_a", _partial(i))  # synchronous: it cannot wait for a reader
            got.append(await anext(reader))
        assert got == [_partial(i) for i in range(500)]  # the reader lost nothing
        assert stalled.dropped == 498  # the stalled one kept the newest two
        assert [await anext(stalled), await anext(stalled)] == [_partial(498), _partial(499)]
    assert hub.jobs() == 0


async def test_the_final_image_comes_after_the_partials_held_and_only_to_watchers() -> None:
    hub = PartialHub(keep=2)
    final = Final(b"png bytes", {"usage": {"output_tokens": 1}})
    assert not hub.watched("job_a")
    assert hub.finish("job_a", final) == 0  # nobody reads: nothing kept
    async with hub.subscribe("job_a") as reader:
        assert hub.watched("job_a") and not hub.watched("job_b")
        hub.publish("job_a", _partial(0))
        hub.publish("job_a", _partial(1))
        assert hub.finish("job_a", final) == 1
        got = [await anext(reader) for _ in range(3)]
        assert got == [_partial(0), _partial(1), final]  # the final last, once
        waiting = asyncio.ensure_future(anext(reader))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        waiting.cancel()
    assert not hub.watched("job_a")
