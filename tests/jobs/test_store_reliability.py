"""Job-store additions from the fault-injection run (docs/reliability.md), on every backend:
lease renewal by a running worker, and Idempotency-Keys that attach to another request's job."""

from __future__ import annotations

import asyncio
import time

import pytest

from pixelpipe.errors import IdempotencyMismatch
from pixelpipe.jobs.model import JobStatus
from pixelpipe.jobs.store import JobStore
from tests.jobs.test_store_contract import make_job


async def test_renewing_keeps_a_running_steps_lease_from_expiring(store: JobStore) -> None:
    job = make_job("renew")
    await store.create(job, single_flight=False)
    [claimed] = await store.claim_due("w1", limit=5, lease_s=0.2)
    assert claimed.id == job.id
    await asyncio.sleep(0.3)  # the lease has lapsed: another worker could claim it now ...
    assert await store.renew_leases([job.id], "w1", 30.0) == 1  # ... unless the owner renews
    assert await store.claim_due("w2", limit=5, lease_s=30.0) == []
    assert await store.renew_leases([job.id], "w2", 30.0) == 0  # only the holder renews
    renewed = await store.get(job.id)
    assert renewed is not None and renewed.lease_owner == "w1"
    assert (renewed.lease_expires_at or 0) > time.time() + 20


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
