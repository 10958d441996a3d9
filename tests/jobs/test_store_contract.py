"""Job-store contract: one suite, run against every database backend."""

from __future__ import annotations

import asyncio
import time

import pytest

from pixelpipe.db import open_database
from pixelpipe.errors import Conflict, IdempotencyMismatch
from pixelpipe.events.local import LocalNotifier
from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.ids import is_job_id, new_job_id
from pixelpipe.jobs.model import ImageRecord, Job, JobStatus
from pixelpipe.jobs.store import JobStore
from pixelpipe.key import content_key

S = JobStatus


def make_job(prompt: str = "a fox", *, idem: str | None = None, due: float | None = None) -> Job:
    req = CanonicalRequest(
        model="preview", prompt=prompt, seed=1, width=64, height=64, format="png"
    )
    now = time.time()
    return Job(
        id=new_job_id(),
        status=S.QUEUED,
        model="preview",
        request=req,
        content_key=content_key(req),
        created_at=now,
        updated_at=now,
        deadline_at=now + 600,
        next_run_at=now if due is None else due,
        provider="preview",
        idempotency_key=idem,
    )


async def test_create_roundtrip_and_first_event(store: JobStore) -> None:
    job = make_job()
    stored, created = await store.create(job, single_flight=True)
    assert created and stored.id == job.id and is_job_id(job.id)
    got = await store.get(job.id)
    assert got is not None and got.request == job.request and got.status is S.QUEUED
    events = await store.events_since(job.id)
    assert [e.data["status"] for e in events] == ["queued"]


async def test_single_flight_under_concurrency(store: JobStore) -> None:
    results = await asyncio.gather(
        *(store.create(make_job(), single_flight=True) for _ in range(50))
    )
    created = [j for j, c in results if c]
    assert len(created) == 1
    assert {j.id for j, _ in results} == {created[0].id}


async def test_terminal_job_frees_the_single_flight_key(store: JobStore) -> None:
    first, _ = await store.create(make_job(), single_flight=True)
    await store.transition(first.id, S.QUEUED, S.FAILED, error_code="x", error_detail="y")
    second, created = await store.create(make_job(), single_flight=True)
    assert created and second.id != first.id


async def test_idempotency_key_returns_the_same_job_or_refuses_another_body(
    store: JobStore,
) -> None:
    a, created_a = await store.create(make_job(idem="-:k1"), single_flight=False, fingerprint="f1")
    b, created_b = await store.create(make_job(idem="-:k1"), single_flight=False, fingerprint="f1")
    assert created_a and not created_b and a.id == b.id
    with pytest.raises(IdempotencyMismatch):
        await store.create(make_job("other", idem="-:k1"), single_flight=False, fingerprint="f2")


async def test_transitions_are_checked_and_guarded(store: JobStore) -> None:
    job, _ = await store.create(make_job(), single_flight=True)
    with pytest.raises(Conflict):
        await store.transition(job.id, S.QUEUED, S.SUCCEEDED)
    moved = await store.transition(job.id, S.QUEUED, S.SUBMITTING)
    assert moved is not None and moved.status is S.SUBMITTING
    assert await store.transition(job.id, S.QUEUED, S.SUBMITTING) is None  # lost the race
    done = await store.transition(job.id, S.SUBMITTING, S.FAILED, error_code="e", error_detail="d")
    assert done is not None and done.finished_at is not None and done.next_run_at is None
    events = await store.events_since(job.id)
    assert [e.data["status"] for e in events] == ["queued", "submitting", "failed"]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [e.data["status"] for e in await store.events_since(job.id, events[0].id)] == [
        "submitting",
        "failed",
    ]


async def test_claims_are_exclusive_across_owners(store: JobStore) -> None:
    ids = {(await store.create(make_job(f"p{i}"), single_flight=True))[0].id for i in range(20)}
    a, b = await asyncio.gather(
        store.claim_due("A", limit=20, lease_s=30), store.claim_due("B", limit=20, lease_s=30)
    )
    assert {j.id for j in a} | {j.id for j in b} == ids
    assert not {j.id for j in a} & {j.id for j in b}
    assert await store.claim_due("C", limit=20, lease_s=30) == []


async def test_future_jobs_are_not_due_and_expired_leases_are(store: JobStore) -> None:
    later, _ = await store.create(make_job("later", due=time.time() + 60), single_flight=True)
    now_job, _ = await store.create(make_job("now"), single_flight=True)
    claimed = await store.claim_due("A", limit=10, lease_s=0.01)
    assert [j.id for j in claimed] == [now_job.id]
    await asyncio.sleep(0.05)
    again = await store.claim_due("B", limit=10, lease_s=30)
    assert [j.id for j in again] == [now_job.id]  # A's lease expired (A "crashed")
    assert later.id not in {j.id for j in again}
    assert await store.claim(now_job.id, "C", lease_s=30) is None  # B holds it


async def test_release_all_hands_leases_back(store: JobStore) -> None:
    job, _ = await store.create(make_job(), single_flight=True)
    assert await store.claim_due("A", limit=1, lease_s=300)
    assert await store.release_all("A") == 1
    assert [j.id for j in await store.claim_due("B", limit=1, lease_s=300)] == [job.id]


async def test_image_index_is_idempotent(store: JobStore) -> None:
    rec = ImageRecord(
        "k1:" + "a" * 64,
        "preview/aa/x.png",
        "image/png",
        64,
        64,
        100,
        "preview",
        "gen_x",
        time.time(),
    )
    await asyncio.gather(*(store.save_image(rec) for _ in range(5)))
    assert await store.find_image(rec.content_key) == rec
    assert await store.image_stats() == (1, 100)


async def test_webhook_deliveries_are_seen_once(store: JobStore) -> None:
    results = await asyncio.gather(
        *(store.record_delivery("replicate", "msg_1", None) for _ in range(5))
    )
    assert results.count(True) == 1


async def test_overdue_finds_late_and_silent_jobs(store: JobStore) -> None:
    job, _ = await store.create(make_job(), single_flight=True)
    await store.transition(job.id, S.QUEUED, S.SUBMITTING)
    await store.transition(
        job.id,
        S.SUBMITTING,
        S.WAITING,
        webhook_deadline_at=time.time() - 1,
        next_run_at=time.time() + 300,
    )
    late, silent = await store.overdue(time.time())
    assert [j.id for j in silent] == [job.id] and late == []
    late, _ = await store.overdue(time.time() + 10_000)
    assert [j.id for j in late] == [job.id]


async def _succeeded_with_image(store: JobStore, job: Job) -> ImageRecord:
    await store.create(job, single_flight=True)
    await store.transition(job.id, S.QUEUED, S.CANCELED)  # terminal, like a finished job
    rec = ImageRecord(job.content_key, "preview/ab/x.png", "image/png", 64, 64, 10, "preview",
                      job.id, time.time(), "thumbs/preview/ab/x.webp")  # fmt: skip
    await store.save_image(rec)
    await store.update(job.id, storage_key=rec.storage_key, thumb_key=rec.thumb_key)
    return rec


async def test_delete_keeps_a_shared_image_and_frees_the_last(store: JobStore) -> None:
    first = make_job("shared")
    rec = await _succeeded_with_image(store, first)
    hit = make_job("shared")
    hit.status, hit.cached, hit.storage_key = S.SUCCEEDED, True, rec.storage_key
    assert await store.create_cache_hit(hit) == (hit, True)

    done = await store.delete(first.id)
    assert done.found and not done.already and done.orphaned == ()
    assert await store.get(first.id) is None
    assert [e.type for e in await store.events_since(first.id)] == ["deleted"]  # a tombstone
    assert await store.find_image(rec.content_key) == rec  # the hit still references it

    last = await store.delete(hit.id)
    assert last.orphaned == ("preview/ab/x.png", "thumbs/preview/ab/x.webp")
    assert await store.find_image(rec.content_key) is None
    assert (await store.delete(hit.id)).already  # a repeat is recognised
    assert not (await store.delete(new_job_id())).found


async def test_a_cache_hit_after_the_delete_finds_the_image_gone(store: JobStore) -> None:
    job = make_job("raced")
    rec = await _succeeded_with_image(store, job)
    await store.delete(job.id)
    store._images[rec.content_key] = rec  # another process's memory of the image
    late = make_job("raced")
    late.status, late.cached = S.SUCCEEDED, True
    assert await store.create_cache_hit(late) is None
    assert await store.get(late.id) is None and store.cached_image(rec.content_key) is None


async def test_concurrent_hits_and_delete_leave_no_dangling_reference(store: JobStore) -> None:
    job = make_job("contended")
    rec = await _succeeded_with_image(store, job)
    hits = [make_job("contended") for _ in range(20)]
    for h in hits:
        h.status, h.cached, h.storage_key = S.SUCCEEDED, True, rec.storage_key
    results = await asyncio.gather(store.delete(job.id), *(store.create_cache_hit(h) for h in hits))
    done, inserted = results[0], results[1:]
    kept = [h for h, r in zip(hits, inserted, strict=True) if r is not None]
    index = await store.find_image(rec.content_key)
    if kept:  # some hits won: the image must still be indexed and not handed out for deletion
        assert index is not None and done.orphaned == ()
    else:
        assert index is None and done.orphaned


async def test_a_running_job_is_not_deleted(store: JobStore) -> None:
    job = make_job("busy")
    await store.create(job, single_flight=True)
    with pytest.raises(Conflict, match="cancel it first"):
        await store.delete(job.id)
    assert await store.get(job.id) is not None


async def test_a_delete_and_hits_from_another_process_leave_no_dangling_reference(
    store: JobStore,
) -> None:
    """Two processes (two engines on the same database): the image row lock decides the race."""
    url = store.db.writer.url.render_as_string(hide_password=False)
    other_db = open_database(url)
    other = JobStore(other_db, LocalNotifier())
    try:
        for round_ in range(5):
            job = make_job(f"two processes {round_}")
            rec = await _succeeded_with_image(store, job)
            other._images[rec.content_key] = rec  # the other process served this image before
            hits = [make_job(f"two processes {round_}") for _ in range(8)]
            for h in hits:
                h.status, h.cached, h.storage_key = S.SUCCEEDED, True, rec.storage_key
            done, *inserted = await asyncio.gather(
                store.delete(job.id), *(other.create_cache_hit(h) for h in hits)
            )
            index = await store.find_image(rec.content_key)
            if any(r is not None for r in inserted):
                assert index is not None and done.orphaned == ()
            else:
                assert index is None and done.orphaned
    finally:
        await other_db.dispose()
