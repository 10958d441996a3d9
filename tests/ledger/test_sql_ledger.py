"""SqlLedger specifics: migrations, budget management, exactly-once across restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from pixelpipe.db import Database, open_database
from pixelpipe.errors import BudgetExceeded, InvalidRequest
from pixelpipe.ledger import Budget, Charge, Price, Reservation
from pixelpipe.ledger.budgets import delete_budget, list_budgets, set_budget
from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.ledger.sql.reserve import make_reservation
from pixelpipe.ledger.tables import budget_reservations, budgets, ledger_entries
from pixelpipe.migrations.runner import alembic_config, upgrade
from pixelpipe.pricing import load_price_table

from .conftest import make_settings

LEDGER_TABLES = ("ledger_entries", "budgets", "budget_reservations")


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = open_database(url)
    yield database
    await database.dispose()


def _schema(url: str) -> dict[str, list[str]]:
    from sqlalchemy import create_engine

    engine = create_engine(url.replace("+aiosqlite", ""))
    try:
        insp = inspect(engine)
        return {t: [c["name"] for c in insp.get_columns(t)] for t in insp.get_table_names()}
    finally:
        engine.dispose()


def test_migration_matches_the_table_definitions(url: str) -> None:
    schema = _schema(url)
    for table in (ledger_entries, budgets, budget_reservations):
        assert schema[table.name] == [c.name for c in table.columns]


def test_migration_downgrades_to_0001(url: str) -> None:
    command.downgrade(alembic_config(url), "0001")
    assert not set(LEDGER_TABLES) & set(_schema(url))
    upgrade(url)
    assert set(LEDGER_TABLES) <= set(_schema(url))


async def test_budget_management(db: Database, tmp_path: Path) -> None:
    await set_budget(db, "key:k1", "month", 5_000_000)
    await set_budget(db, "global", "day", 1_000_000)
    await set_budget(db, "global", "day", 2_000_000)  # replaces
    assert await list_budgets(db) == [
        Budget("global", "day", 2_000_000),
        Budget("key:k1", "month", 5_000_000),
    ]
    settings = make_settings(tmp_path, budget_monthly_usd=12.5)
    listed = await list_budgets(db, settings)
    assert listed[0] == Budget("global", "month", 12_500_000, "settings")
    assert await delete_budget(db, "global", "day") is True
    assert await delete_budget(db, "global", "day") is False
    assert await list_budgets(db) == [Budget("key:k1", "month", 5_000_000)]


@pytest.mark.parametrize(
    ("scope", "period", "limit"),
    [("everyone", "day", 1), ("key:", "day", 1), ("global", "week", 1), ("global", "day", -1)],
)
async def test_budget_validation(db: Database, scope: str, period: str, limit: int) -> None:
    with pytest.raises(InvalidRequest):
        await set_budget(db, scope, period, limit)


async def test_one_entry_per_attempt_across_a_restart(url: str, tmp_path: Path) -> None:
    """A SIGKILL after the provider succeeded: the worker re-runs and records the attempt again."""
    settings = make_settings(tmp_path)
    prices = load_price_table()
    entry = Charge("j1", 1, "fal", "req-1", "flux-dev", "attempt", Price(50_000, "2026-01", "x"))
    for _ in range(2):
        database = open_database(url)
        try:
            await SqlLedger(database, settings, prices).record(entry)
        finally:
            await database.dispose()
    database = open_database(url)
    try:
        assert len(await SqlLedger(database, settings, prices).entries()) == 1
    finally:
        await database.dispose()


async def test_reservation_survives_restart_until_it_expires(url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    prices = load_price_table()
    now = [1_790_000_000.0]
    first = open_database(url)
    await set_budget(first, "global", "day", 10)
    await SqlLedger(first, settings, prices, reservation_ttl_s=60, clock=lambda: now[0]).reserve(
        "j1", None, 10
    )
    await first.dispose()
    second = open_database(url)
    try:
        ledger = SqlLedger(second, settings, prices, reservation_ttl_s=60, clock=lambda: now[0])
        assert await ledger.reserved_micros() == 10
        now[0] += 61
        await ledger.reserve("j2", None, 10)
    finally:
        await second.dispose()


def test_a_new_jobs_reservation_skips_the_look_for_one_it_cannot_hold(url: str) -> None:
    """``new_job``: the admission inserts the job in the same transaction — no reservation of
    its own to find, the expired ones left to ``reserve`` (they count for nothing); the budget
    is checked all the same."""
    engine = create_engine(url.replace("+aiosqlite", ""))
    now = 1_790_000_000.0

    def reservation(job_id: str, amount: int) -> Reservation:
        return Reservation(job_id, None, amount, now, now + 60, (Budget("global", "day", 10),))

    rows = "SELECT job_id FROM budget_reservations ORDER BY job_id"
    try:
        with engine.begin() as conn:
            conn.execute(
                budget_reservations.insert().values(
                    job_id="expired", amount_micros=5, created_at=now - 120, expires_at=now - 60
                )
            )
            make_reservation(conn, reservation("new", 4), new_job=True)
            assert [r[0] for r in conn.execute(text(rows))] == ["expired", "new"]
            with pytest.raises(BudgetExceeded):  # 4 held + 7 > 10: the check still runs
                make_reservation(conn, reservation("over", 7), new_job=True)
            make_reservation(conn, reservation("new", 4))  # held already: kept, not doubled
            assert [r[0] for r in conn.execute(text(rows))] == ["new"]  # the expired one swept
    finally:
        engine.dispose()
