"""A SQL ledger sharing the job store's database writes its rows in the unit of work that moves or
inserts the job: an attempt's pending row with the move to submitting (never without it), a
cache hit's $0 entry with its job (never for a request that attached to an earlier one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelpipe.errors import ConfigError
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs.memory import MemoryJobStore
from pixelpipe.jobs.model import JobStatus
from pixelpipe.jobs.sql import SqlJobStore
from pixelpipe.ledger.base import OPEN_RUN, Charge
from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.pricing import load_price_table
from pixelpipe.pricing.price import Price
from pixelpipe.settings import Settings
from tests.jobs.test_store_contract import make_job, succeeded_with_image


def _ledger(store: SqlJobStore, tmp_path: Path) -> SqlLedger:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    return SqlLedger(store.db, settings, load_price_table())


def _charge(job_id: str, attempt: int, run: str, kind: str = "attempt") -> Charge:
    return Charge(
        job_id=job_id,
        attempt=attempt,
        provider="openai",
        provider_job_id=run,
        model="preview",
        kind=kind,  # type: ignore[arg-type]
        price=Price(40_000, "test", "estimate"),
    )


async def test_the_pending_row_goes_in_with_the_move_only(
    sql_store: SqlJobStore, tmp_path: Path
) -> None:
    ledger = _ledger(sql_store, tmp_path)
    job = make_job("pending with the move")
    await sql_store.create(job, single_flight=False)
    await ledger.open_attempt(_charge(job.id, 1, OPEN_RUN))  # there already: a step run twice
    pending = ledger.pending_values(_charge(job.id, 1, OPEN_RUN))
    moved = await sql_store.transition(
        job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, attempt=1, entry=pending
    )
    assert moved is not None and moved.status is JobStatus.SUBMITTING
    rows = await ledger.entries(job.id)
    assert [(e.charge.attempt, e.charge.state) for e in rows] == [(1, "pending")]
    # a move that does not match writes no row
    later = ledger.pending_values(_charge(job.id, 2, OPEN_RUN))
    refused = await sql_store.transition(
        job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, attempt=2, entry=later
    )
    assert refused is None
    assert [e.charge.attempt for e in await ledger.entries(job.id)] == [1]


async def test_a_cache_hit_entry_goes_in_with_its_job_only(
    sql_store: SqlJobStore, tmp_path: Path
) -> None:
    ledger = _ledger(sql_store, tmp_path)
    original = await succeeded_with_image(sql_store, make_job("cached entry"))
    hit = make_job("cached entry", idem="key-1")
    hit.status = JobStatus.SUCCEEDED
    entry = ledger.entry_values(_charge(hit.id, 0, "cache", "cache_hit"))
    assert await sql_store.create_cache_hit(hit, fingerprint="f", entry=entry) == (hit, True)
    assert [e.charge.kind for e in await ledger.entries(hit.id)] == ["cache_hit"]
    # the same Idempotency-Key again: the earlier job, and no second entry for the new id
    replay = make_job("cached entry", idem="key-1")
    replay.status = JobStatus.SUCCEEDED
    entry = ledger.entry_values(_charge(replay.id, 0, "cache", "cache_hit"))
    found = await sql_store.create_cache_hit(replay, fingerprint="f", entry=entry)
    assert found is not None and found[0].id == hit.id and not found[1]
    assert await ledger.entries(replay.id) == []
    assert original.content_key == hit.content_key


async def test_the_memory_store_refuses_a_sql_ledgers_rows() -> None:
    store = MemoryJobStore(LocalNotifier())
    job = make_job("memory")
    await store.create(job, single_flight=False)
    with pytest.raises(ConfigError):
        await store.transition(job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, entry={"x": 1})
    with pytest.raises(ConfigError):
        await store.create_cache_hit(make_job("memory hit"), entry={"x": 1})
