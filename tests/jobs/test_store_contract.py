"""Job-store contract: one suite, run against every implementation (memory, SQLite, PostgreSQL).

What only the SQL store has (its transactions, several processes on one database) is in
``test_sql_store.py``."""

from __future__ import annotations

import asyncio
import time

import pytest

from pixelpipe.errors import Conflict, IdempotencyMismatch
from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.ids import is_job_id, new_job_id
from pixelpipe.jobs.model import ImageRecord, Job, JobStatus
from pixelpipe.jobs.sql import SqlJobStore
from pixelpipe.jobs.store import JobStore, Opening
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


def remember(store: JobStore, rec: ImageRecord) -> None:
    """Make the store's process remember ``rec`` (the SQL store's own memory of images seen;
    the memory store's index is its memory)."""
    if isinstance(store, SqlJobStore):
        store._images[rec.content_key] = rec


async def succeeded_with_image(store: JobStore, job: Job) -> ImageRecord:
    await store.create(job, single_flight=True)
    await store.transition(job.id, S.QUEUED, S.CANCELED)  # terminal, like a finished job
    rec = ImageRecord(job.content_key, "preview/ab/x.png", "image/png", 64, 64, 10, "preview",
                      job.id, time.time(), "thumbs/preview/ab/x.webp")  # fmt: skip
    await store.save_image(rec)
    await store.update(job.id, storage_key=rec.storage_key, thumb_key=rec.thumb_key)
    return rec


async def test_delete_keeps_a_shared_image_and_frees_the_last(store: JobStore) -> None:
    first = make_job("shared")
    rec = await succeeded_with_image(store, first)
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
    rec = await succeeded_with_image(store, job)
    await store.delete(job.id)
    remember(store, rec)  # another process's memory of the image
    late = make_job("raced")
    late.status, late.cached = S.SUCCEEDED, True
    assert await store.create_cache_hit(late) is None
    assert await store.get(late.id) is None and store.cached_image(rec.content_key) is None


async def test_concurrent_hits_and_delete_leave_no_dangling_reference(store: JobStore) -> None:
    job = make_job("contended")
    rec = await succeeded_with_image(store, job)
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


async def test_a_stored_image_is_admitted_as_is_and_nothing_is_written(store: JobStore) -> None:
    job = make_job("already drawn")
    rec = ImageRecord(
        job.content_key, "preview/aa/x.png", "image/png", 64, 64, 10, "preview", "gen_x",
        time.time(), "thumbs/x.webp",
    )  # fmt: skip
    await store.save_image(rec)
    admission = await store.admit(job)
    assert not admission.created and admission.image == rec
    assert await store.get(job.id) is None and await store.count_by_status() == {}
    assert store.cached_image(job.content_key) == rec


async def test_an_identical_request_in_flight_is_admitted_to_the_first_job(
    store: JobStore,
) -> None:
    first = make_job("twice")
    admitted = await store.admit(first)
    assert admitted.created and admitted.job.id == first.id and admitted.image is None
    second = await store.admit(make_job("twice"))
    assert not second.created and second.job.id == first.id
    assert await store.count_by_status() == {"queued": 1}
    assert [e.data["status"] for e in await store.events_since(first.id)] == ["queued"]


async def test_an_opening_moves_the_admitted_job_on_to_submitting_in_its_admission(
    store: JobStore,
) -> None:
    first = _leased(make_job("opened at once"), "here")
    submitted_at = time.time()
    opening = Opening(fields={"attempt": 1, "submitted_at": submitted_at})
    admitted = await store.admit(first, opening=opening)
    assert admitted.created and admitted.job.id == first.id
    assert admitted.job.status is S.SUBMITTING and admitted.job.attempt == 1
    assert admitted.job.lease_owner == "here" and admitted.job.submitted_at == submitted_at
    stored = await store.get(first.id)
    assert stored is not None and stored.status is S.SUBMITTING and stored.attempt == 1
    events = await store.events_since(first.id)
    assert [e.data["status"] for e in events] == ["queued", "submitting"]  # as two writes made
    # a request that attaches to it moves nothing: the first job is as it was
    again = await store.admit(_leased(make_job("opened at once"), "here"), opening=opening)
    assert not again.created and again.job.id == first.id
    assert [e.data["status"] for e in await store.events_since(first.id)] == [
        "queued",
        "submitting",
    ]
    assert await store.count_by_status() == {"submitting": 1}


def _leased(job: Job, owner: str) -> Job:
    job.lease_owner, job.lease_expires_at = owner, time.time() + 60
    return job


async def test_admission_honours_idempotency_keys(store: JobStore) -> None:
    first = make_job("keyed", idem="-:a1")
    assert (await store.admit(first, fingerprint="f1")).created
    again = await store.admit(make_job("keyed", idem="-:a1"), fingerprint="f1")
    assert not again.created and again.job.id == first.id
    with pytest.raises(IdempotencyMismatch):
        await store.admit(make_job("another", idem="-:a1"), fingerprint="f2")


async def test_a_key_that_attached_to_an_inflight_job_keeps_pointing_at_it(
    store: JobStore,
) -> None:
    first = make_job("same picture", idem="-:k1")
    stored, created = await store.create(first, single_flight=True, fingerprint="f1")
    assert created
    second = make_job("same picture", idem="-:k2")
    attached, created = await store.create(second, single_flight=True, fingerprint="f2")
    assert not created and attached.id == first.id
    # the first job finishes; a retry with k2 (a cache-hit path: no single-flight) finds it
    await store.transition(first.id, stored.status, JobStatus.CANCELED)
    retry = make_job("same picture", idem="-:k2")
    again, created = await store.create(retry, single_flight=False, fingerprint="f2")
    assert not created and again.id == first.id
    with pytest.raises(IdempotencyMismatch):
        await store.create(make_job("other", idem="-:k2"), single_flight=False, fingerprint="f3")


async def test_a_deleted_jobs_keys_are_free_again(store: JobStore) -> None:
    first = make_job("forgotten", idem="-:d1")
    await store.create(first, single_flight=True, fingerprint="f1")
    attached, _ = await store.create(
        make_job("forgotten", idem="-:d2"), single_flight=True, fingerprint="f2"
    )
    assert attached.id == first.id
    await store.transition(first.id, S.QUEUED, S.CANCELED)
    await store.delete(first.id)
    for key in ("-:d1", "-:d2"):  # its own key and the one that attached to it
        fresh = make_job("forgotten", idem=key)
        again, created = await store.create(fresh, single_flight=True, fingerprint="other")
        assert created and again.id == fresh.id
        await store.transition(fresh.id, S.QUEUED, S.CANCELED)


async def test_a_stored_job_is_the_stores_own_copy(store: JobStore) -> None:
    job = make_job("copied")
    await store.create(job, single_flight=True)
    job.error_code = "changed by the caller"
    got = await store.get(job.id)
    assert got is not None and got.error_code is None
    got.provider_state["x"] = 1
    again = await store.get(job.id)
    assert again is not None and again.provider_state == {}


async def test_updates_are_guarded_by_the_lease_owner(store: JobStore) -> None:
    job, _ = await store.create(make_job("updated"), single_flight=True)
    assert await store.update(job.id, provider_state={"progress": {"percent": 5}})
    assert not await store.update(new_job_id(), next_run_at=1.0)
    assert await store.claim(job.id, "A", lease_s=30) is not None
    assert not await store.update(job.id, owner="B", next_run_at=1.0)
    assert await store.update(job.id, owner="A", provider_job_id="run-1")
    got = await store.get(job.id)
    assert got is not None and got.provider_job_id == "run-1" and got.next_run_at != 1.0
    assert got.provider_state == {"progress": {"percent": 5}}
    assert await store.transition(job.id, S.QUEUED, S.SUBMITTING, owner="B") is None
    moved = await store.transition(job.id, S.QUEUED, S.SUBMITTING, owner="A", attempt=1)
    assert moved is not None and moved.attempt == 1 and moved.lease_owner == "A"


async def test_terminal_transitions_clear_the_lease_and_schedule(store: JobStore) -> None:
    job, _ = await store.create(make_job("ended"), single_flight=True)
    await store.claim(job.id, "A", lease_s=30)
    done = await store.transition(job.id, [S.QUEUED, S.SUBMITTING], S.CANCELED, owner="A")
    assert done is not None and done.status is S.CANCELED
    assert done.lease_owner is None and done.lease_expires_at is None
    assert done.next_run_at is None and done.finished_at is not None
    assert await store.transition(job.id, [S.QUEUED, S.SUBMITTING], S.CANCELED) is None


async def test_jobs_are_listed_newest_first_and_filtered(store: JobStore) -> None:
    made = []
    for prompt, model_group in [("A red Fox", "g1"), ("a blue whale", "g1"), ("100%_fox", "g2")]:
        job = make_job(prompt)
        job.group_id = model_group
        await store.create(job, single_flight=False)
        made.append(job)
        await asyncio.sleep(0.002)  # ids sort by creation time
    ids = [j.id for j in made]
    assert [j.id for j in await store.list_jobs()] == ids[::-1]
    assert [j.id for j in await store.list_jobs(limit=2)] == ids[:0:-1]
    assert [j.id for j in await store.list_jobs(before=ids[2])] == ids[1::-1]
    assert [j.id for j in await store.list_jobs(query="FOX")] == [ids[2], ids[0]]
    assert [j.id for j in await store.list_jobs(query="%_")] == [ids[2]]
    assert [j.id for j in await store.list_jobs(group="g1")] == ids[1::-1]
    assert await store.list_jobs(model="other") == []
    await store.transition(ids[1], S.QUEUED, S.CANCELED)
    assert [j.id for j in await store.list_jobs(status="canceled")] == [ids[1]]
    assert await store.count_by_status() == {"queued": 2, "canceled": 1}


async def test_a_job_is_found_by_its_provider_run(store: JobStore) -> None:
    job, _ = await store.create(make_job("run"), single_flight=True)
    await store.update(job.id, provider_job_id="pred_1")
    found = await store.find_by_provider_job("preview", "pred_1")
    assert found is not None and found.id == job.id
    assert await store.find_by_provider_job("replicate", "pred_1") is None
    assert await store.find_by_provider_job("preview", "pred_2") is None


async def test_a_forgotten_delivery_is_recorded_again(store: JobStore) -> None:
    assert await store.record_delivery("replicate", "msg_2", "gen_x")
    assert not await store.record_delivery("replicate", "msg_2", "gen_x")
    assert await store.record_delivery("fal", "msg_2", None)  # per provider
    await store.forget_delivery("replicate", "msg_2")
    assert await store.record_delivery("replicate", "msg_2", "gen_x")


async def test_the_store_answers_a_ping(store: JobStore) -> None:
    await store.ping()
