"""The migrations produce exactly the schema the code's table definitions describe."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, inspect

from pixelpipe.db import metadata
from pixelpipe.jobs import tables as _jobs  # noqa: F401 - registers the tables
from pixelpipe.ledger import tables as _ledger  # noqa: F401
from pixelpipe.migrations.runner import upgrade
from pixelpipe.moderation import tables as _moderation  # noqa: F401
from pixelpipe.security import tables as _security  # noqa: F401


def test_migrated_schema_matches_table_definitions(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(url.replace("+aiosqlite", ""))
    insp = inspect(engine)
    for table in metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
    engine.dispose()


def test_a_migrated_sqlite_file_is_left_in_wal_mode(tmp_path: Path) -> None:
    """The app's connections then open it without switching its mode: the switch takes an
    exclusive lock without waiting, and failed with "database is locked" when two connections
    opened a fresh file at once (a CI run of tests/jobs/test_image_handover.py)."""
    path = tmp_path / "fresh.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
