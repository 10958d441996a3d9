"""embedded_worker: runs the steps while the block runs, takes hand-overs, stops cleanly; with a
queue that is not embedded it starts nothing."""

from __future__ import annotations

from pixelpipe.jobs.model import JobStatus
from pixelpipe.queue.local import LocalQueue
from pixelpipe.services import Services
from pixelpipe.usecases.batch import wait_many
from pixelpipe.usecases.submit import submit
from pixelpipe.usecases.worker_lifecycle import embedded_worker
from tests.usecases.conftest import body


async def test_the_embedded_worker_runs_jobs_and_takes_hand_overs(svc: Services) -> None:
    async with embedded_worker(svc, grace_s=1.0) as dispatcher:
        assert dispatcher is not None and svc.queue.handoff is dispatcher
        sub = await submit(svc, body("handed over"))
        assert sub.job.lease_owner == dispatcher.owner  # inserted leased to this dispatcher
        (done,) = await wait_many(svc, [sub.job], timeout_s=10)
        assert done.status is JobStatus.SUCCEEDED
    assert svc.queue.handoff is None  # stopped: nothing is handed over any more


class _MessageQueue(LocalQueue):
    """A queue whose jobs run in worker processes (as SAQ's do)."""

    embedded = False


async def test_nothing_starts_beside_a_queue_that_is_not_embedded(svc: Services) -> None:
    svc.queue = _MessageQueue()
    async with embedded_worker(svc, grace_s=1.0) as dispatcher:
        assert dispatcher is None and svc.queue.handoff is None
        sub = await submit(svc, body("left to the workers"))
    row = await svc.store.get(sub.job.id)
    assert row is not None and row.status is JobStatus.QUEUED and row.lease_owner is None
