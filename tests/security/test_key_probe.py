"""The "any API key?" probe on the event loop's thread: exact, never stale, never waiting.

:class:`pixelpipe.security.key_probe.KeyProbe` answers the per-request question of a server with
no key yet on a SQLite connection of its own. A key committed by another connection must count at
the very next ask (no snapshot kept between asks), and when the table cannot be read at once the
probe must say "cannot tell" (None) — never "no key" — so that the caller asks the slow,
fail-closed way.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pixelpipe.db import Database, open_database
from pixelpipe.migrations.runner import upgrade_async
from pixelpipe.security.auth import PROBE_MAX_SERVING, KeyExistence
from pixelpipe.security.key_probe import KeyProbe

_ROW = (
    "INSERT INTO api_keys (id, name, secret_hash, scopes, rpm, created_at) "
    "VALUES (?, '', ?, 'read', 0, 0)"
)


@pytest.fixture
async def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "pixelpipe.db"
    await upgrade_async(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite+aiosqlite:///{db_path}")
    yield database
    await database.dispose()


def _probe(path: Path) -> KeyProbe:
    probe = KeyProbe.open(make_url(f"sqlite:///{path}"))
    assert probe is not None
    return probe


def _add_key(path: Path, key_id: str) -> None:
    with sqlite3.connect(path) as other:  # another connection (another process's, in effect)
        other.execute(_ROW, (key_id, "0" * 64))


async def test_a_key_committed_by_another_connection_counts_at_the_next_ask(
    db_path: Path,
) -> None:
    probe = _probe(db_path)
    try:
        assert probe.ask() is False
        assert probe.ask() is False  # a second ask: no read left open by the first
        _add_key(db_path, "k1")
        assert probe.ask() is True
    finally:
        probe.close()


async def test_a_table_it_cannot_read_at_once_answers_none_never_no(db_path: Path) -> None:
    probe = _probe(db_path)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("PRAGMA journal_mode=DELETE")  # a file not in WAL mode, being written
        other.execute("BEGIN EXCLUSIVE")
        assert probe.ask() is None  # locked: it does not wait, and does not say "no"
        other.execute("ROLLBACK")
        other.execute("ALTER TABLE api_keys RENAME TO api_keys_gone")
        assert probe.ask() is None  # the table gone: cannot tell
    finally:
        other.close()
    probe.close()
    assert probe.ask() is None  # closed: cannot tell


def test_no_probe_for_other_databases(tmp_path: Path) -> None:
    assert KeyProbe.open(make_url("postgresql://u@localhost/db")) is None
    assert KeyProbe.open(make_url("sqlite:///:memory:")) is None
    missing = tmp_path / "missing.db"
    assert KeyProbe.open(make_url(f"sqlite:///{missing}")) is None
    assert not missing.exists()  # never creates a file


async def test_key_existence_asks_the_probe_and_falls_back_to_a_thread(
    db: Database, db_path: Path
) -> None:
    keys = KeyExistence()
    await keys.prime(db)
    assert keys.probe is not None and keys.queries == 1
    assert await keys.exist(db) is False
    assert keys.queries == 1 and keys.probe.asked == 1  # answered on this thread
    keys.probe.close()  # the probe cannot answer any more: the thread query does, exactly
    _add_key(db_path, "k2")
    assert await keys.exist(db) is True
    assert keys.queries == 2 and keys.known
    keys.close()


async def test_under_load_the_shared_thread_query_answers(db: Database, db_path: Path) -> None:
    keys = KeyExistence()
    await keys.prime(db)
    assert keys.probe is not None
    many = PROBE_MAX_SERVING + 1  # many requests in flight: a burst shares one query
    answers = await asyncio.gather(*(keys.exist(db, in_flight=many) for _ in range(16)))
    assert answers == [False] * 16
    assert keys.probe.asked == 0 and 2 <= keys.queries <= 3  # prime + at most two per burst
    # one at a time again: the probe, on this thread
    assert await keys.exist(db) is False
    assert keys.probe.asked == 1
    keys.close()
