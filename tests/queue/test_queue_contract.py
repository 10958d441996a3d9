"""Queue contract: what the pipeline relies on, for the embedded queue and SAQ-on-PostgreSQL.

The queue only carries job ids; the row decides. So the contract is: an enqueued job starts at
once (not on the table scan's timer), duplicates never run a step twice, a message never runs a
job before its row is due, a lost message only delays, and stopping hands every lease back.
"""

from __future__ import annotations

import asyncio
import time

from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.ids import new_job_id
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.key import content_key
from tests.queue.conftest import QueueHarness

S = JobStatus


async def test_an_enqueued_job_starts_at_once(queue_harness: QueueHarness) -> None:
    await asyncio.sleep(0.2)  # the worker side is idle, its table scan asleep for 30 s
    t0 = time.monotonic()
    job = await queue_harness.submit("right away")
    done = await queue_harness.wait_done(job.id, timeout=5)
    assert done.status is S.SUCCEEDED
    assert time.monotonic() - t0 < 2.0


async def test_many_jobs_each_run_exactly_once(queue_harness: QueueHarness) -> None:
    jobs = await asyncio.gather(*(queue_harness.submit(f"job {i}") for i in range(40)))
    done = await queue_harness.wait_all([j.id for j in jobs])
    assert {j.status for j in done} == {S.SUCCEEDED}
    assert queue_harness.provider.submissions == 40


async def test_duplicate_messages_never_run_a_step_twice(queue_harness: QueueHarness) -> None:
    job = await queue_harness.submit("once")
    await asyncio.gather(*(queue_harness.producer.queue.enqueue(job.id) for _ in range(10)))
    await queue_harness.wait_done(job.id)
    for _ in range(5):
        await queue_harness.producer.queue.enqueue(job.id)  # late duplicates, after the end
    await asyncio.sleep(0.5)
    assert queue_harness.provider.submissions == 1
    final = await queue_harness.producer.store.get(job.id)
    assert final is not None and final.status is S.SUCCEEDED and final.attempt == 1


def _row(due_in: float) -> Job:
    req = CanonicalRequest(
        model="preview", prompt=f"due {due_in}", seed=1, width=64, height=64, format="png"
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
        next_run_at=now + due_in,
        provider="preview",
    )


async def test_a_message_never_runs_a_job_before_its_row_is_due(
    queue_harness: QueueHarness,
) -> None:
    job, _ = await queue_harness.producer.store.create(_row(due_in=1.5), single_flight=True)
    await queue_harness.producer.queue.enqueue(job.id)  # e.g. a stale message during a backoff
    await asyncio.sleep(0.8)
    row = await queue_harness.producer.store.get(job.id)
    assert row is not None and row.status is S.QUEUED and row.lease_owner is None
    queue_harness.dispatcher.wakeup.set()  # the scan looks again (it would within a second)
    await asyncio.sleep(0.9)
    queue_harness.dispatcher.wakeup.set()
    assert (await queue_harness.wait_done(job.id, timeout=5)).status is S.SUCCEEDED


async def test_a_lost_message_only_delays(queue_harness: QueueHarness) -> None:
    job, _ = await queue_harness.producer.store.create(_row(due_in=0), single_flight=True)
    # no enqueue at all: the worker's table scan claims the due row on its next pass
    queue_harness.dispatcher.wakeup.set()
    assert (await queue_harness.wait_done(job.id, timeout=5)).status is S.SUCCEEDED
    assert queue_harness.provider.submissions == 1


async def test_stopping_hands_every_lease_back(queue_harness: QueueHarness) -> None:
    queue_harness.worker.providers["preview"].latency_s = 30.0  # type: ignore[attr-defined]
    jobs = [await queue_harness.submit(f"slow {i}") for i in range(3)]
    await asyncio.sleep(0.5)
    if queue_harness.consumer is not None:
        await queue_harness.consumer.stop()
    await queue_harness.dispatcher.stop(grace_s=5)
    for job in jobs:
        row = await queue_harness.producer.store.get(job.id)
        assert row is not None and row.lease_owner is None and not row.status.terminal


# ---- the members callers use instead of asking which queue it is -------------------------------


async def test_embedded_says_whether_this_process_runs_the_steps(
    queue_harness: QueueHarness,
) -> None:
    queue = queue_harness.producer.queue
    assert queue.embedded is (queue_harness.kind == "local")
    consumer = queue.consumer(queue_harness.dispatcher.offer, concurrency=1, worker_id=None)
    # an embedded queue has no messages to take; a message queue's worker takes them
    assert (consumer is None) is queue.embedded


async def test_a_dispatcher_on_the_queue_wakeup_takes_hand_overs_only_when_embedded(
    queue_harness: QueueHarness,
) -> None:
    queue = queue_harness.worker.queue
    assert queue_harness.dispatcher.wakeup is queue.wakeup
    expected = queue_harness.dispatcher if queue.embedded else None
    assert queue.handoff is expected
    await queue_harness.dispatcher.stop(grace_s=1)
    assert queue.handoff is None  # a stopped dispatcher takes nothing over


async def test_enqueue_wakes_this_process_only_when_embedded(
    queue_harness: QueueHarness,
) -> None:
    queue = queue_harness.producer.queue
    queue.wakeup.clear()
    job, _ = await queue_harness.producer.store.create(_row(due_in=60), single_flight=True)
    await queue.enqueue(job.id)
    assert queue.wakeup.is_set() is queue.embedded


async def test_connect_and_ping_may_be_called_again(queue_harness: QueueHarness) -> None:
    queue = queue_harness.producer.queue
    await queue.connect()  # build_services connected it already
    await queue.connect()
    await queue.ping()
