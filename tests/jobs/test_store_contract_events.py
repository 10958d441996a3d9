"""Job-store contract, events: ids that only grow, status events that keep the job as it was at
that moment (``jobs/snapshots.py``), and the wake-ups listeners get."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

from pixelpipe.events.base import ALL
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs.model import Job, JobEvent, JobStatus
from pixelpipe.jobs.snapshots import SNAPSHOT_FIELDS, job_at
from pixelpipe.jobs.store import JobStore
from tests.jobs.test_store_contract import make_job

S = JobStatus


def visible(job: Job) -> dict[str, object]:
    """What a reader is shown of a job: the snapshotted fields and the progress."""
    shown: dict[str, object] = {name: getattr(job, name) for name in SNAPSHOT_FIELDS}
    shown["progress"] = job.provider_state.get("progress") or {}
    return shown


async def test_each_status_event_renders_the_job_of_its_moment(store: JobStore) -> None:
    job, _ = await store.create(make_job("a heron"), single_flight=True)
    moments = [job]
    for expected, target, fields in [
        (S.QUEUED, S.SUBMITTING, {"attempt": 1}),
        (S.SUBMITTING, S.WAITING, {"provider_state": {"progress": {"percent": 40}}}),
        (S.WAITING, S.FETCHING, {}),
        (S.FETCHING, S.STORING, {}),
        (
            S.STORING,
            S.SUCCEEDED,
            {
                "storage_key": "preview/ab/abc.webp",
                "content_type": "image/webp",
                "width": 64,
                "height": 64,
                "bytes": 123,
                "cost_micros": 3000,
                "cost_status": "priced",
                "revised_prompt": "a grey heron",
            },
        ),
    ]:
        moved = await store.transition(job.id, expected, target, **fields)
        assert moved is not None
        moments.append(moved)

    events, current = await store.events_with_job(job.id, 0)
    assert current is not None and current.status is S.SUCCEEDED
    status_events = [e for e in events if e.type == "status"]
    assert len(status_events) == len(moments)
    for ev, then in zip(status_events, moments, strict=True):
        assert visible(job_at(current, ev)) == visible(then), ev.data["status"]
        assert job_at(current, ev).request == job.request  # fixed fields come from the job now
    assert job_at(current, status_events[0]).storage_key is None  # not the image of later
    assert job_at(current, status_events[0]).finished_at is None


async def test_events_stored_before_snapshots_fall_back_to_their_own_data(
    store: JobStore,
) -> None:
    job, _ = await store.create(make_job("an old event"), single_flight=True)
    done = await store.transition(job.id, S.QUEUED, S.FAILED, error_code="e", error_detail="d")
    assert done is not None
    legacy = JobEvent(1, job.id, "status", {"status": "queued", "attempt": 0}, job.created_at)
    then = job_at(done, legacy)
    assert then.status is S.QUEUED and then.error_code is None
    assert dataclasses.replace(then, status=done.status, error_code="e", error_detail="d") == done


async def test_the_all_jobs_feed_reads_no_snapshots(store: JobStore) -> None:
    job, _ = await store.create(make_job("a feed"), single_flight=True)
    feed = await store.status_events_after(0)
    assert [e.job_id for e in feed] == [job.id] and feed[0].snapshot is None


async def test_events_are_added_in_order_with_growing_ids(store: JobStore) -> None:
    assert await store.last_event_id() == 0
    job, _ = await store.create(make_job("events"), single_flight=True)
    await store.add_event(job.id, "progress", {"percent": 50})
    events = await store.events_since(job.id)
    assert [(e.type, e.data) for e in events] == [
        ("status", {"status": "queued", "attempt": 0}),
        ("progress", {"percent": 50}),
    ]
    assert events[0].id < events[1].id == await store.last_event_id()
    assert events[0].snapshot is not None and events[1].snapshot is None
    assert all(e.job_id == job.id and e.created_at <= time.time() for e in events)
    later, current = await store.events_with_job(job.id, events[0].id)
    assert [e.type for e in later] == ["progress"] and current is None  # no status: no job read


async def test_a_status_event_carries_the_callers_additions(store: JobStore) -> None:
    job, _ = await store.create(make_job("extra"), single_flight=True)
    await store.transition(job.id, S.QUEUED, S.FAILED, event={"reason": "x"}, error_code="e")
    last = (await store.events_since(job.id))[-1]
    assert last.data == {
        "status": "failed",
        "attempt": 0,
        "error": {"code": "e", "detail": None},
        "reason": "x",
    }


async def test_the_all_jobs_feed_is_in_id_order_and_limited(store: JobStore) -> None:
    jobs = [(await store.create(make_job(f"feed {i}"), single_flight=True))[0] for i in range(3)]
    await store.add_event(jobs[0].id, "progress", {})  # not a status event: not in the feed
    await store.transition(jobs[0].id, S.QUEUED, S.CANCELED)
    feed = await store.status_events_after(0)
    assert [(e.job_id, e.data["status"]) for e in feed] == [
        (jobs[0].id, "queued"),
        (jobs[1].id, "queued"),
        (jobs[2].id, "queued"),
        (jobs[0].id, "canceled"),
    ]
    assert [e.id for e in await store.status_events_after(feed[1].id, limit=1)] == [feed[2].id]
    await store.delete(jobs[0].id)  # its events go, a tombstone stays
    assert [e.job_id for e in await store.status_events_after(0)] == [jobs[1].id, jobs[2].id]
    assert await store.last_event_id() > feed[-1].id


@dataclasses.dataclass
class Heard:
    job: list[str]
    all: list[str]


async def _listen(notifier: LocalNotifier, job_id: str) -> AsyncIterator[Heard]:
    heard = Heard([], [])
    async with notifier.subscribe(f"job:{job_id}") as one, notifier.subscribe(ALL) as every:

        async def drain() -> None:
            async for message in one:
                heard.job.append(message)

        async def drain_all() -> None:
            async for message in every:
                heard.all.append(message)

        tasks = [asyncio.create_task(drain()), asyncio.create_task(drain_all())]
        try:
            yield heard
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_listeners_are_woken_by_every_change_they_can_see(
    store: JobStore, notifier: LocalNotifier
) -> None:
    job = make_job("heard")
    listening = _listen(notifier, job.id)
    heard = await anext(listening)
    await store.create(job, single_flight=True)
    await store.add_event(job.id, "progress", {})
    await store.transition(job.id, S.QUEUED, S.SUBMITTING)
    await store.update(job.id, attempt=1)  # no event: nobody is woken
    await asyncio.sleep(0.01)
    assert heard.job == ["changed"] * 3 and heard.all == [job.id] * 3
    await listening.aclose()
