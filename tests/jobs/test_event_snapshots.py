"""Status events keep the job as it was at that moment (``jobs/snapshots.py``), on every backend."""

from __future__ import annotations

import dataclasses

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
