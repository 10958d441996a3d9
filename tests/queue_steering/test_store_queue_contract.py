"""Job-store contract, the queue (jobs/order.py): claims in priority and fair-share order, crash
counting and quarantine, pause and resume, and the operator's view. Runs on every store."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from sqlalchemy import Connection, text

from pixelpipe.db import open_database
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.slots import InLine
from pixelpipe.jobs.sql import SqlJobStore, leases
from pixelpipe.jobs.store import JobStore
from tests.jobs.test_store_contract import make_job

S = JobStatus


def keyed(
    key: str | None, n: int, *, priority: int = 5, share: int = 1, t0: float = 0
) -> list[Job]:
    """``n`` due jobs of ``key``, each a millisecond older than the next (arrival order)."""
    base = time.time() - 100 + t0
    return [
        dataclasses.replace(
            make_job(f"{key}-{i}-{t0}"),
            api_key_id=key,
            priority=priority,
            share=share,
            next_run_at=base + i * 0.001,
        )
        for i in range(n)
    ]


async def add(store: JobStore, jobs: list[Job]) -> list[str]:
    for job in jobs:
        await store.create(job, single_flight=False)
    return [j.id for j in jobs]


async def test_higher_priority_is_claimed_first(store: JobStore) -> None:
    low = await add(store, keyed("a", 3, priority=2))
    high = await add(store, keyed("a", 2, priority=8, t0=1))  # arrived later
    claimed = await store.claim_due("w", limit=5, lease_s=30)
    assert [j.id for j in claimed] == high + low


async def test_keys_share_capacity_fairly_not_in_arrival_order(store: JobStore) -> None:
    batch = await add(store, keyed("batch", 50))  # a backlog that arrived first
    interactive = await add(store, keyed("ui", 2, t0=1))
    first = [j.id for j in await store.claim_due("w", limit=4, lease_s=30)]
    # FIFO would give four batch jobs; fair share alternates the two keys
    assert set(interactive) <= set(first), first
    assert first[0] == batch[0] and set(first) - set(interactive) == set(batch[:2])


async def test_running_jobs_count_against_their_key(store: JobStore) -> None:
    batch = await add(store, keyed("batch", 20))
    assert [j.id for j in await store.claim_due("w", limit=3, lease_s=30)] == batch[:3]
    ui = await add(store, keyed("ui", 3, t0=1))
    # batch holds 3 runs: the next three claims go to the key that has none
    assert [j.id for j in await store.claim_due("w", limit=3, lease_s=30)] == ui


async def test_a_larger_share_gets_more_runs(store: JobStore) -> None:
    await add(store, keyed("big", 20, share=3))
    await add(store, keyed("small", 20, t0=1))
    claimed = await store.claim_due("w", limit=8, lease_s=30)
    counts = {k: sum(1 for j in claimed if j.api_key_id == k) for k in ("big", "small")}
    assert counts == {"big": 6, "small": 2}


async def test_steps_of_started_runs_come_before_new_runs(store: JobStore) -> None:
    new = await add(store, keyed("a", 2, priority=9))
    started = keyed("b", 1, priority=0, t0=1)[0]
    started.status = S.WAITING
    await store.create(started, single_flight=False)
    claimed = await store.claim_due("w", limit=3, lease_s=30)
    assert [j.id for j in claimed] == [started.id, *new]


async def test_waiting_order_is_the_claim_order(store: JobStore) -> None:
    await add(store, keyed("batch", 6))
    await add(store, keyed("ui", 2, t0=1))
    await add(store, keyed("vip", 1, priority=7, t0=2))
    order = [w.id for w in await store.waiting_order()]
    claimed = []
    for _ in range(len(order)):
        claimed += [j.id for j in await store.claim_due("w", limit=1, lease_s=30)]
        # each claim is the head of the order as it is now
    assert claimed[0] == order[0]
    assert sorted(claimed) == sorted(order)


async def test_changing_priority_moves_a_queued_job_ahead(store: JobStore) -> None:
    ids = await add(store, keyed("a", 4))
    moved = await store.set_priority(ids[3], 9)
    assert moved is not None and moved.priority == 9
    assert (await store.waiting_order())[0].id == ids[3]
    [first] = await store.claim_due("w", limit=1, lease_s=30)
    assert first.id == ids[3]
    await store.transition(first.id, S.QUEUED, S.SUBMITTING, owner="w")
    assert await store.set_priority(ids[3], 1) is None  # started: too late to reorder


async def test_a_job_crashing_n_times_is_quarantined_and_others_flow(store: JobStore) -> None:
    [poison] = await add(store, keyed("a", 1))
    for crashes in range(3):  # a worker claims it and dies: the lease lapses mid-step
        [got] = await store.claim_due("w", limit=5, lease_s=0.05, poison_after=3)
        assert got.id == poison and got.crashes == crashes
        await asyncio.sleep(0.1)
    healthy = await add(store, keyed("b", 2, t0=1))
    claimed = await store.claim_due("w2", limit=5, lease_s=30, poison_after=3)
    assert [j.id for j in claimed] == healthy  # the third crash held it; the rest flow
    [held] = await store.held_jobs()
    assert held.id == poison and held.crashes == 3 and held.held_at is not None
    assert "crashed 3 times" in (held.held_reason or "")
    assert held.next_run_at is None and await store.claim(poison, "w3", lease_s=30) is None
    assert poison not in {w.id for w in await store.waiting_order()}
    late, _silent = await store.overdue(time.time() + 10_000)
    assert poison not in {j.id for j in late}  # held for the operator, not timed out
    events = [e.type for e in await store.events_since(poison)]
    assert "quarantined" in events
    released = await store.release_held(poison)
    assert released is not None and released.crashes == 0 and released.held_at is None
    assert await store.release_held(poison) is None
    [again] = await store.claim_due("w4", limit=5, lease_s=30, poison_after=3)
    assert again.id == poison


async def test_a_crash_is_not_counted_for_a_lease_given_back(store: JobStore) -> None:
    [job_id] = await add(store, keyed("a", 1))
    for _ in range(4):
        [got] = await store.claim_due("w", limit=1, lease_s=30, poison_after=2)
        await store.release(got.id, "w")
    stored = await store.get(job_id)
    assert stored is not None and stored.crashes == 0 and stored.held_at is None


async def test_a_paused_provider_keeps_its_queued_jobs_waiting(store: JobStore) -> None:
    queued = await add(store, keyed("a", 2))
    started = keyed("a", 1, t0=1)[0]
    started.status = S.FETCHING
    await store.create(started, single_flight=False)
    pause = await store.pause("preview", "maintenance")
    assert pause.reason == "maintenance" and (await store.pause("preview")).reason == "maintenance"
    assert set(await store.pauses()) == {"preview"}
    claimed = await store.claim_due("w", limit=5, lease_s=30)
    assert [j.id for j in claimed] == [started.id]  # running jobs finish; new ones wait
    assert set(queued) <= {w.id for w in await store.waiting_order()}
    assert await store.resume("preview") is True and await store.resume("preview") is False
    assert {j.id for j in await store.claim_due("w", limit=5, lease_s=30)} == set(queued)


async def test_in_flight_lists_started_and_claimed_jobs(store: JobStore) -> None:
    ids = await add(store, keyed("a", 3))
    [claimed] = await store.claim_due("w", limit=1, lease_s=30)
    assert [j.id for j in await store.in_flight()] == [claimed.id]
    assert await store.jobs_by_ids([ids[2], "nope", ids[1]]) != []
    assert [j.id for j in await store.jobs_by_ids([ids[2], ids[1]])] == [ids[2], ids[1]]


async def test_two_processes_keep_one_order_and_obey_one_pause(
    sql_store: SqlJobStore, notifier: LocalNotifier
) -> None:
    """Two stores on one database (as two worker processes): concurrent claims never overlap,
    both follow the fair order, and a pause made by one holds the other's claims."""
    url = sql_store.db.writer.url.render_as_string(hide_password=False)
    other = SqlJobStore(open_database(url), notifier)
    try:
        await add(sql_store, keyed("batch", 40))
        ui = await add(sql_store, keyed("ui", 4, t0=1))
        a, b = await asyncio.gather(
            sql_store.claim_due("A", limit=4, lease_s=30), other.claim_due("B", limit=4, lease_s=30)
        )
        got = [j.id for j in a] + [j.id for j in b]
        assert len(got) == len(set(got)) == 8
        assert set(ui) <= set(got)  # FIFO would have given eight batch jobs
        await other.pause("preview", "drain")
        assert await sql_store.claim_due("A", limit=10, lease_s=30) == []
        assert (await sql_store.pauses())["preview"].reason == "drain"
        assert await sql_store.resume("preview")
        assert len(await other.claim_due("B", limit=10, lease_s=30)) == 10
    finally:
        await other.db.dispose()


async def test_a_claim_locks_only_the_rows_it_takes(
    sql_store: SqlJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a claim's transaction is open, every due row it does not take stays free for a
    claim of another process at that moment (which skips locked rows: had the claim locked all
    the candidates it looked at, up to its limit per key, the other could find none)."""
    if sql_store.db.sync_writer.dialect.name != "postgresql":
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED): PostgreSQL")
    await add(sql_store, keyed("batch", 40))
    await add(sql_store, keyed("ui", 4, t0=1))  # two keys: eight candidates for a claim of four
    free_meanwhile: list[int] = []
    real = leases._lock_first

    def watched(conn: Connection, rows: list[Any], now: float, limit: int) -> list[Any]:
        picked = real(conn, rows, now, limit)
        with sql_store.db.sync_writer.connect() as other:  # another process, in effect
            free = other.execute(text("SELECT id FROM jobs FOR UPDATE SKIP LOCKED")).all()
            free_meanwhile.append(len(free))
            other.rollback()
        return picked

    monkeypatch.setattr(leases, "_lock_first", watched)
    got = await sql_store.claim_due("A", limit=4, lease_s=30)
    assert len(got) == 4 and free_meanwhile == [40]


async def test_a_backend_line_puts_higher_priority_first(store: JobStore) -> None:
    from tests.jobs.test_store_contract_slots import queued, start

    a, b, c = await queued(store, 3)
    assert isinstance(await start(store, a), Job)  # the one slot
    assert isinstance(low := await start(store, b), InLine) and low.position == 1
    await store.set_priority(c.id, 8)
    assert isinstance(high := await start(store, c), InLine) and high.position == 1
    b_now = await store.get(b.id)
    assert b_now is not None and await store.line_position(b_now) == 2
    await store.transition(a.id, S.SUBMITTING, S.FAILED, owner=f"w-{a.id}")
    c_now = await store.get(c.id)
    assert c_now is not None and c_now.next_run_at is not None
    assert c_now.next_run_at <= time.time()  # the freed slot woke the higher priority first
    assert isinstance(await start(store, c), Job)


async def test_a_paused_backend_starts_no_run(store: JobStore) -> None:
    from tests.jobs.test_store_contract_slots import GPU, queued, start

    [a] = await queued(store, 1)
    await store.pause(GPU)
    assert await start(store, a) is None  # a job handed over in-process waits too
    await store.resume(GPU)
    assert isinstance(await start(store, a), Job)


async def test_a_backend_line_shares_freed_slots_fairly_between_keys(store: JobStore) -> None:
    from tests.jobs.test_store_contract_slots import GPU, start

    async def line_up(key: str, n: int) -> list[Job]:
        out = []
        for job in keyed(key, n, t0=len(key)):
            job = dataclasses.replace(job, provider=GPU)
            await store.create(job, single_flight=False)
            claimed = await store.claim(job.id, f"w-{job.id}", lease_s=60)
            assert claimed is not None
            out.append(claimed)
        return out

    batch = await line_up("batch", 5)
    assert isinstance(await start(store, batch[0]), Job)  # the one slot
    for job in batch[1:]:
        assert isinstance(await start(store, job), InLine)
    [ui] = await line_up("interactive", 1)  # found the backend full after the whole batch
    # first come, first served would make it #4; the batch holds the slot, so it is next
    assert isinstance(placed := await start(store, ui), InLine) and placed.position == 1
    b2 = await store.get(batch[1].id)
    assert b2 is not None and await store.line_position(b2) == 2
    assert await store.line_ids(GPU) == [ui.id] + [j.id for j in batch[1:]]
    await store.transition(batch[0].id, S.SUBMITTING, S.FAILED, owner=f"w-{batch[0].id}")
    ui_now = await store.get(ui.id)
    assert ui_now is not None and (ui_now.next_run_at or 0) <= time.time()  # woken first
    assert isinstance(await start(store, batch[1]), InLine)  # not its turn
    assert isinstance(await start(store, ui), Job)
    # with the interactive key holding the slot, the batch is next again, in its own order
    b2 = await store.get(batch[1].id)
    assert b2 is not None and await store.line_position(b2) == 1
    assert await store.line_ids(GPU) == [j.id for j in batch[1:]]
