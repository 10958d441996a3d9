"""What only the SQL job store has: the budget reservation made in the transaction that inserts
the job (``admit``), and several processes (connection pools) on one database."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from pixelpipe.db import open_database
from pixelpipe.errors import BudgetExceeded, ConfigError
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs.memory import MemoryJobStore
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.sql import SqlJobStore
from pixelpipe.jobs.store import Opening
from pixelpipe.jobs.tables import images, job_events, jobs
from pixelpipe.ledger.base import OPEN_RUN, Charge
from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.ledger.tables import budget_reservations, ledger_entries
from pixelpipe.migrations.runner import upgrade_async
from pixelpipe.pricing import load_price_table
from pixelpipe.pricing.price import Price
from pixelpipe.settings import Settings
from tests.jobs.test_store_contract import _leased, make_job, remember, succeeded_with_image


def _ledger(store: SqlJobStore, tmp_path: Path, daily_usd: float) -> SqlLedger:
    settings = Settings(_env_file=None, data_dir=tmp_path, budget_daily_usd=daily_usd)  # type: ignore[call-arg]
    return SqlLedger(store.db, settings, load_price_table())


async def _count(store: SqlJobStore, table) -> int:  # type: ignore[no-untyped-def]
    async with store.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar() or 0)


async def test_the_reservation_and_the_job_commit_together(
    sql_store: SqlJobStore, tmp_path: Path
) -> None:
    ledger = _ledger(sql_store, tmp_path, daily_usd=0.05)
    first = make_job("within budget")
    admission = await sql_store.admit(first, guard=ledger.reservation(first.id, None, 30_000))
    assert admission.created and await sql_store.get(first.id) is not None
    assert await ledger.reserved_micros() == 30_000

    refused = make_job("over budget")
    with pytest.raises(BudgetExceeded):
        await sql_store.admit(refused, guard=ledger.reservation(refused.id, None, 30_000))
    assert await sql_store.get(refused.id) is None  # the refusal rolled the insert back
    assert await _count(sql_store, jobs) == 1 and await _count(sql_store, job_events) == 1
    assert await _count(sql_store, budget_reservations) == 1


async def test_no_reservation_is_made_for_a_request_that_attaches(
    sql_store: SqlJobStore, tmp_path: Path
) -> None:
    ledger = _ledger(sql_store, tmp_path, daily_usd=1.0)
    first = make_job("twice")
    assert (await sql_store.admit(first, guard=ledger.reservation(first.id, None, 10))).created
    second = make_job("twice")
    attached = await sql_store.admit(second, guard=ledger.reservation(second.id, None, 10))
    assert not attached.created and attached.job.id == first.id
    assert await _count(sql_store, budget_reservations) == 1


async def test_concurrent_admissions_never_overspend(
    sql_store: SqlJobStore, tmp_path: Path
) -> None:
    ledger = _ledger(sql_store, tmp_path, daily_usd=0.05)
    wanted = [make_job(f"concurrent {i}") for i in range(12)]
    results = await asyncio.gather(
        *(sql_store.admit(j, guard=ledger.reservation(j.id, None, 10_000)) for j in wanted),
        return_exceptions=True,
    )
    assert sum(1 for r in results if isinstance(r, BudgetExceeded)) == 7
    assert await _count(sql_store, jobs) == 5 and await ledger.reserved_micros() == 50_000


def _pending(ledger: SqlLedger, job: Job) -> dict[str, Any]:
    charge = Charge(
        job_id=job.id,
        attempt=1,
        provider="preview",
        provider_job_id=OPEN_RUN,
        model=job.model,
        kind="attempt",
        price=Price(20_000, "test", "per_image"),
    )
    return ledger.pending_values(charge)


async def test_an_opening_commits_with_the_job_its_reservation_and_its_pending_attempt(
    sql_store: SqlJobStore, tmp_path: Path
) -> None:
    ledger = _ledger(sql_store, tmp_path, daily_usd=0.05)
    first = _leased(make_job("opened"), "here")
    opening = Opening(fields={"attempt": 1, "submitted_at": 1.0}, entry=_pending(ledger, first))
    admitted = await sql_store.admit(
        first, guard=ledger.reservation(first.id, None, 30_000), opening=opening
    )
    assert admitted.created and admitted.job.status is JobStatus.SUBMITTING
    assert [(e.charge.attempt, e.charge.state) for e in await ledger.entries(first.id)] == [
        (1, "pending")
    ]
    assert await ledger.reserved_micros() == 30_000

    refused = _leased(make_job("opened over budget"), "here")
    opening = Opening(fields={"attempt": 1, "submitted_at": 1.0}, entry=_pending(ledger, refused))
    with pytest.raises(BudgetExceeded):
        await sql_store.admit(
            refused, guard=ledger.reservation(refused.id, None, 30_000), opening=opening
        )
    assert await sql_store.get(refused.id) is None and await ledger.entries(refused.id) == []
    assert await _count(sql_store, jobs) == 1 and await _count(sql_store, job_events) == 2
    assert await _count(sql_store, ledger_entries) == 1

    # attached to the first job: neither its opening nor its reservation is written
    again = _leased(make_job("opened"), "here")
    opening = Opening(fields={"attempt": 1, "submitted_at": 1.0}, entry=_pending(ledger, again))
    attached = await sql_store.admit(
        again, guard=ledger.reservation(again.id, None, 10), opening=opening
    )
    assert not attached.created and attached.job.id == first.id
    assert await _count(sql_store, ledger_entries) == 1 and await ledger.reserved_micros() == 30_000


async def test_an_opened_admission_inserts_the_job_submitting_in_one_statement(
    sql_store: SqlJobStore, tmp_path: Path
) -> None:
    """No INSERT then UPDATE: the row goes in as the move would leave it, its two status events
    (queued, then submitting) as the move writes them, and the job returned is the row's."""
    ledger = _ledger(sql_store, tmp_path, daily_usd=1.0)
    statements: list[str] = []
    writer = sql_store.db.sync_writer
    if writer.dialect.name == "sqlite":  # its statements go to the driver: SQLite's own trace

        @event.listens_for(writer, "connect")
        def trace(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.set_trace_callback(statements.append)

        writer.dispose()  # connections made from here on are traced
    else:

        @event.listens_for(writer, "before_cursor_execute")
        def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

    job = _leased(make_job("one insert"), "here")
    opening = Opening(fields={"attempt": 1, "submitted_at": 12.5}, entry=_pending(ledger, job))
    admitted = await sql_store.admit(job, opening=opening)
    on_jobs = [s.split(" (")[0] for s in statements if " jobs " in f"{s} " and "SELECT" not in s]
    assert on_jobs == ["INSERT INTO jobs"], statements
    stored = await sql_store.get(job.id)
    assert stored == admitted.job and stored is not None
    assert (stored.status, stored.attempt, stored.submitted_at) == (JobStatus.SUBMITTING, 1, 12.5)
    assert stored.lease_owner == "here" and stored.slot_wait_since is None
    events = await sql_store.events_since(job.id)
    assert [e.data["status"] for e in events] == ["queued", "submitting"]
    assert events[1].snapshot is not None and events[1].snapshot["attempt"] == 1
    assert [e.charge.state for e in await ledger.entries(job.id)] == ["pending"]


async def test_the_memory_store_refuses_a_sql_ledgers_reservation(
    sql_store: SqlJobStore, tmp_path: Path
) -> None:
    ledger = _ledger(sql_store, tmp_path, daily_usd=1.0)
    job = make_job("mismatched")
    with pytest.raises(ConfigError, match="in-memory ledger"):
        await MemoryJobStore(LocalNotifier()).admit(job, guard=ledger.reservation(job.id, None, 1))


async def test_a_delete_and_hits_from_another_process_leave_no_dangling_reference(
    sql_store: SqlJobStore,
) -> None:
    """Two processes (two engines on the same database): the image row lock decides the race."""
    store = sql_store
    url = store.db.writer.url.render_as_string(hide_password=False)
    other_db = open_database(url)
    other = SqlJobStore(other_db, LocalNotifier())
    try:
        for round_ in range(5):
            job = make_job(f"two processes {round_}")
            rec = await succeeded_with_image(store, job)
            remember(other, rec)  # the other process served this image before
            hits = [make_job(f"two processes {round_}") for _ in range(8)]
            for h in hits:
                h.status, h.cached, h.storage_key = JobStatus.SUCCEEDED, True, rec.storage_key
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


async def test_the_image_index_entry_is_one_statement_and_the_first_stays(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'index.db'}"
    await upgrade_async(url)
    store = SqlJobStore(open_database(url), LocalNotifier())
    statements: list[str] = []

    @event.listens_for(store.db.sync_writer, "connect")
    def trace(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.set_trace_callback(statements.append)

    store.db.sync_writer.dispose()  # connections made from here on are traced
    try:
        job = make_job("indexed once")
        rec = await succeeded_with_image(store, job)
        statements.clear()
        other = dataclasses.replace(rec, storage_key="preview/zz/other.png")
        await store.save_image(other)  # the same content key again: the first entry stays
        index = [s for s in statements if "images" in s]
        assert len(index) == 1 and "ON CONFLICT DO NOTHING" in index[0], statements
        async with store.db.read() as conn:
            kept = (await conn.execute(select(images.c.storage_key))).scalars().all()
        assert kept == [rec.storage_key]
    finally:
        await store.db.dispose()
