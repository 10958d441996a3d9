from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.db import open_database
from pixelpipe.dispatcher import Dispatcher
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs.memory import MemoryJobStore
from pixelpipe.jobs.sql import SqlJobStore
from pixelpipe.jobs.store import JobStore
from pixelpipe.migrations.runner import upgrade_async
from pixelpipe.queue.local import LocalQueue
from pixelpipe.services import Services

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.servers)]


async def _sql_store(
    request: pytest.FixtureRequest, tmp_path: Path, notifier: LocalNotifier
) -> SqlJobStore:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    else:  # a fresh database on the session's real PostgreSQL (tests/servers)
        url = request.getfixturevalue("postgres_url")
    await upgrade_async(url)
    return SqlJobStore(open_database(url), notifier)


@pytest.fixture
def notifier() -> LocalNotifier:
    """The notifier the store under test wakes listeners through."""
    return LocalNotifier()


@pytest.fixture(params=["memory", *SQL_BACKENDS])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, notifier: LocalNotifier
) -> AsyncIterator[JobStore]:
    """Every job store implementation: the contract suite runs against each."""
    if request.param == "memory":
        yield MemoryJobStore(notifier)
        return
    sql = await _sql_store(request, tmp_path, notifier)
    yield sql
    await sql.db.dispose()


@pytest.fixture(params=SQL_BACKENDS)
async def sql_store(
    request: pytest.FixtureRequest, tmp_path: Path, notifier: LocalNotifier
) -> AsyncIterator[SqlJobStore]:
    """The SQL job store on each database, for what only SQL has (transactions, processes)."""
    sql = await _sql_store(request, tmp_path, notifier)
    yield sql
    await sql.db.dispose()


@contextlib.asynccontextmanager
async def dispatching(services: Services) -> AsyncIterator[Services]:
    """``services`` with the embedded dispatcher running on them (stopped, then closed after)."""
    assert isinstance(services.queue, LocalQueue)
    dispatcher = Dispatcher(services, services.queue.wakeup)
    running = asyncio.create_task(dispatcher.run())
    try:
        yield services
    finally:
        await dispatcher.stop()
        await asyncio.gather(running, return_exceptions=True)
        await services.aclose()
