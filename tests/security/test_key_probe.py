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
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from pixelpipe.api.middleware import Authenticate
from pixelpipe.db import Database, open_database
from pixelpipe.migrations.runner import upgrade_async
from pixelpipe.security.auth import KeyExistence
from pixelpipe.security.key_probe import KeyProbe
from tests.security.conftest import LOOPBACK, running_app

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


async def test_under_load_each_request_asks_the_probe_and_sees_a_new_key_at_once(
    db: Database, db_path: Path
) -> None:
    """A burst of requests is answered by the probe, one read each started after the request
    came: none waits for a thread, and a key committed in the middle of the burst counts for
    every request after it."""
    keys = KeyExistence()
    await keys.prime(db)
    assert keys.probe is not None
    answers = await asyncio.gather(*(keys.exist(db) for _ in range(16)))
    assert answers == [False] * 16
    assert keys.probe.asked == 16 and keys.queries == 1  # the prime only: no thread query
    _add_key(db_path, "k3")
    assert await asyncio.gather(*(keys.exist(db) for _ in range(4))) == [True] * 4
    assert keys.known and keys.probe is None  # sticky: the probe was closed
    keys.close()


async def test_without_an_answering_probe_a_burst_shares_the_thread_query(
    db: Database, db_path: Path
) -> None:
    keys = KeyExistence()
    await keys.prime(db)
    assert keys.probe is not None
    keys.probe.close()  # cannot tell any more (PostgreSQL has none at all)
    answers = await asyncio.gather(*(keys.exist(db) for _ in range(16)))
    assert answers == [False] * 16
    assert 2 <= keys.queries <= 3  # prime + at most two per burst
    _add_key(db_path, "k4")
    assert await keys.exist(db) is True  # a query started after the key was committed
    keys.close()


async def test_requests_held_in_the_app_do_not_push_the_next_ones_onto_a_thread(
    tmp_path: Path,
) -> None:
    """Through the middleware: while 16 requests are past the key check and held in the app
    (their answers not started), each next request still asks the probe; none waits for the
    threaded query (which held a whole burst back, docs/performance.md)."""
    async with running_app(tmp_path / "d") as running:
        auth = running.app.state.auth
        keys = auth.keys
        assert keys.probe is not None
        before = keys.queries
        entered: list[str] = []
        release = asyncio.Event()

        async def held(scope: Any, receive: Any, send: Any) -> None:
            entered.append(scope["path"])
            if len(entered) == 16:
                release.set()
            await release.wait()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        middleware = Authenticate(held, auth)

        async def one(i: int) -> None:
            scope = {
                "type": "http",
                "method": "GET",
                "path": f"/v1/generations/gen_{i}",
                "headers": [],
                "client": LOOPBACK,
                "app": running.app,
            }

            async def send(message: Any) -> None:
                pass

            await asyncio.wait_for(middleware(scope, _no_body, send), 10)

        await asyncio.gather(*(one(i) for i in range(16)))
        assert len(entered) == 16  # every one let in anonymously
        assert keys.probe.asked == 16 and keys.queries == before


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}
