"""Run Alembic migrations programmatically (``pixelpipe migrate`` and embedded start-up)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
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


def _to_wal(path: str, attempts: int = 50) -> None:
    """Leave the file in WAL mode (it stays so: the mode is kept in the file) before the app's
    connections open it. Each of those asks for WAL as it connects (``db._sqlite_pragmas``): a
    no-op once the file is WAL, but the switch itself takes an exclusive lock without waiting
    for it (SQLite does not call the busy handler there), so on a fresh file the first
    connections — the dispatcher's, a request's — could fail at once with "database is locked".
    Another process holding the file open may make a try fail too: a few more, then the
    connections' own try, as before."""
    for _ in range(attempts):
        conn = sqlite3.connect(path, timeout=5)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError:
            mode = None
        finally:
            conn.close()
        if mode == "wal":
            return
        time.sleep(0.02)


async def upgrade_async(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
