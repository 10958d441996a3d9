"""Run Alembic migrations programmatically (``pixelpipe migrate`` and embedded start-up)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    path = _sqlite_file(database_url)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)
    if path is not None:
        _to_wal(path)


def _sqlite_file(database_url: str) -> str | None:
    if not database_url.startswith("sqlite"):
        return None
    path = database_url.split("///", 1)[-1]
    return path if path and path != ":memory:" else None


def _to_wal(path: str) -> None:
    """Leave the file in WAL mode (the mode is kept in the file) before the app's connections
    open it. Each of those asks for WAL as it connects (``db._sqlite_pragmas``): a no-op once
    the file is WAL, but on a fresh file the switch needs an exclusive lock, so a connection
    opening it while another held a read lock waited out its busy timeout and failed with
    "database is locked". Here nothing else has it open yet; if another process does and the
    switch fails, the connections' own try remains, as before."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        pass
    finally:
        conn.close()


async def upgrade_async(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
