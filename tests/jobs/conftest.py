from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.db import open_database
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs.store import JobStore
from pixelpipe.migrations.runner import upgrade_async


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    else:  # a fresh database on the session's real PostgreSQL (tests/servers)
        url = request.getfixturevalue("postgres_url")
    await upgrade_async(url)
    db = open_database(url)
    yield JobStore(db, LocalNotifier())
    await db.dispose()
