"""The GPU-time history a new process starts from: the succeeded GPU-time attempts of the
backends in the ledger (SQLite and PostgreSQL), oldest first."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelpipe.db import open_database
from pixelpipe.ledger.base import Charge
from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.ledger.sql.gpu_runs import recent_gpu_runs
from pixelpipe.migrations.runner import upgrade_async
from pixelpipe.pricing import load_price_table
from pixelpipe.pricing.price import Price
from pixelpipe.settings import load_settings


def _charge(job: str, provider: str, seconds: float, state: str, basis: str = "gpu_time") -> Charge:
    return Charge(
        job_id=job,
        attempt=1,
        provider=provider,
        provider_job_id=f"run-{job}",
        model="house",
        kind="attempt",
        price=Price(100, "2026-01", basis),
        detail={"state": state, "gpu_seconds": seconds, "gpu_time_source": "server"},
    )


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def test_recent_succeeded_runs_oldest_first(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
        if engine == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    await upgrade_async(url)
    db = open_database(url)
    try:
        ledger = SqlLedger(db, load_settings(data_dir=tmp_path), load_price_table())
        await ledger.record(_charge("j1", "gpu_a", 1.0, "succeeded"))
        await ledger.record(_charge("j2", "gpu_a", 9.0, "failed"))  # not a measure of success
        await ledger.record(_charge("j3", "gpu_b", 2.0, "succeeded"))
        await ledger.record(_charge("j4", "replicate", 5.0, "succeeded", basis="per_image"))
        await ledger.record(_charge("j5", "gpu_a", 3.0, "succeeded"))
        runs = await recent_gpu_runs(db, ["gpu_a", "gpu_b"], limit=10)
        assert runs == [("gpu_a", "house", 1.0), ("gpu_b", "house", 2.0), ("gpu_a", "house", 3.0)]
        assert await recent_gpu_runs(db, ["gpu_a"], limit=1) == [("gpu_a", "house", 3.0)]
    finally:
        await db.dispose()
