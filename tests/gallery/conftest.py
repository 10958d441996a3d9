"""Every boards implementation (memory, SQLite, PostgreSQL): the contract suite runs against each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.boards import Boards, MemoryBoards
from pixelpipe.boards.sql import SqlBoards
from pixelpipe.db import open_database
from pixelpipe.migrations.runner import upgrade_async


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def boards(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Boards]:
    if request.param == "memory":
        yield MemoryBoards()
        return
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'boards.db'}"
    else:  # a fresh database on the session's real PostgreSQL (tests/servers)
        url = request.getfixturevalue("postgres_url")
    await upgrade_async(url)
    db = open_database(url)
    yield SqlBoards(db)
    await db.dispose()
