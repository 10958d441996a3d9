""" "Was an API key ever created?" read on the calling thread, for a SQLite database file.

A server without keys asks this on every request it would let in anonymously
(:class:`~pixelpipe.security.auth.KeyExistence`), so that a key made by another process counts at
once. Through a worker thread each ask cost a thread hop (~0.1-0.2 ms of CPU, more than the rest
of the check); this probe asks on a connection of its own, from the event loop's thread, without
ever waiting:

* the database is in WAL mode (pixelpipe's SQLite always is), where a read does not wait for
  writers; the connection's busy timeout is 0, so a moment when it would have to wait (a file not
  in WAL mode while someone writes, a recovery after a crash) raises at once instead;
* each ask is one autocommit ``SELECT`` stepped to its end, i.e. a read transaction that starts
  after the request arrived and ends before the answer: it sees every key committed before it, by
  any process (a connection that kept a statement open would keep reading an old snapshot);
* any error (busy, locked, the table gone, the file unreadable) answers ``None``, and the caller
  asks through a thread as before — which waits for a lock and, failing, answers 503: the probe
  never says "no key" when it could not read the table.

PostgreSQL (and anything but a file-backed SQLite database) gets no probe.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL

_ANY_KEY = "SELECT EXISTS (SELECT 1 FROM api_keys)"


class KeyProbe:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.asked = 0  # how many asks it answered (tests, diagnostics)

    @classmethod
    def open(cls, url: URL) -> KeyProbe | None:
        """A probe on the SQLite file ``url`` names; None for any other database (or no file)."""
        if not url.drivername.startswith("sqlite") or url.query:
            return None
        path = url.database or ""
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
        try:  # mode=rw: never creates a file; timeout=0: never waits for a lock
            conn = sqlite3.connect(
                f"file:{quote(path)}?mode=rw",
                uri=True,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,  # only ever used from the event loop's thread
            )
        except sqlite3.Error:
            return None
        return cls(conn)

    def ask(self) -> bool | None:
        """Whether a key row exists (revoked ones too); None when it cannot tell without
        waiting or at all (the caller then asks the slow, fail-closed way)."""
        try:
            rows = self._conn.execute(_ANY_KEY).fetchall()  # stepped to the end: no open read
        except sqlite3.Error:
            return None
        self.asked += 1
        return bool(rows and rows[0][0])

    def close(self) -> None:
        self._conn.close()
