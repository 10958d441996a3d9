"""PostgreSQL specifics the scale-out shape relies on: migrations run (and run concurrently, as
every process migrates at start-up), and the job store's guarantees hold across separate
connection pools — separate processes in all but PID."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from pixelpipe.db import metadata, open_database
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs import tables as _jobs  # noqa: F401 - registers the tables
from pixelpipe.jobs.sql import SqlJobStore
from pixelpipe.ledger import tables as _ledger  # noqa: F401
from pixelpipe.migrations.runner import upgrade
from pixelpipe.security import tables as _security  # noqa: F401
from tests.jobs.test_store_contract import make_job
from tests.support.serve import CLI

pytestmark = pytest.mark.servers


def test_migrations_run_concurrently_and_match_the_tables(
    postgres_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PIXELPIPE_DATABASE_URL": postgres_url,
        "PIXELPIPE_DATA_DIR": str(tmp_path),
    }
    procs = [  # four processes starting at once, each migrating (`pixelpipe migrate`)
        subprocess.Popen(
            [*CLI, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(4)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out.decode()
    engine = create_engine(postgres_url)
    try:
        insp = inspect(engine)
        for table in metadata.sorted_tables:
            cols = {c["name"] for c in insp.get_columns(table.name)}
            assert cols == {c.name for c in table.columns}, table.name
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        engine.dispose()


@pytest.fixture
async def stores(postgres_url: str) -> AsyncIterator[list[SqlJobStore]]:
    upgrade(postgres_url)
    dbs = [open_database(postgres_url) for _ in range(3)]
    yield [SqlJobStore(db, LocalNotifier()) for db in dbs]
    for db in dbs:
        await db.dispose()


async def test_single_flight_holds_across_processes(stores: list[SqlJobStore]) -> None:
    results = await asyncio.gather(
        *(stores[i % 3].create(make_job("same"), single_flight=True) for i in range(45))
    )
    created = [job for job, new in results if new]
    assert len(created) == 1
    assert {job.id for job, _ in results} == {created[0].id}


async def test_claims_are_exclusive_across_processes(stores: list[SqlJobStore]) -> None:
    ids = {(await stores[0].create(make_job(f"p{i}"), single_flight=True))[0].id for i in range(60)}
    rounds = await asyncio.gather(
        *(stores[i % 3].claim_due(f"w{i}", limit=7, lease_s=30) for i in range(12))
    )
    claimed = [j.id for batch in rounds for j in batch]
    assert len(claimed) == len(set(claimed))  # nobody got a job twice
    assert set(claimed) <= ids
    one = [stores[i % 3].claim(j, f"q{i}", lease_s=30) for i, j in enumerate(ids - set(claimed))]
    assert all(job is not None for job in await asyncio.gather(*one))


async def test_a_crashed_workers_lease_expires_for_the_others(stores: list[SqlJobStore]) -> None:
    job, _ = await stores[0].create(make_job("crash"), single_flight=True)
    assert [j.id for j in await stores[1].claim_due("dead", limit=5, lease_s=0.2)] == [job.id]
    assert await stores[2].claim_due("alive", limit=5, lease_s=30) == []
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    assert [j.id for j in await stores[2].claim_due("alive", limit=5, lease_s=30)] == [job.id]
    assert time.monotonic() - t0 < 1.0
