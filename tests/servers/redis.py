"""A real Redis for tests: Debian's ``redis-server`` on 127.0.0.1, no persistence, stopped by PID."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Self

from tests.servers._process import LOOPBACK, DetachedServer, ServerStartError, free_port


def redis_command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """Send one command (RESP) and return the raw first reply line; no client library needed."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(payload.encode())
        return s.recv(4096).split(b"\r\n", 1)[0]


class RedisServer(DetachedServer):
    """``with RedisServer(tmp_dir) as r: r.url`` — ``redis://127.0.0.1:<port>/0``."""

    what = "redis-server"
    grace_s = 5.0  # SIGTERM: redis exits at once without persistence

    def __init__(self, workdir: Path, *, start_timeout: float = 20.0) -> None:
        super().__init__(workdir, "redis.log", start_timeout=start_timeout)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> Self:
        binary = shutil.which("redis-server")
        if not binary:
            raise ServerStartError("redis-server not found: `apt-get install -y redis-server`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.launch([binary, *self._flags()], self.ping, cwd=self.workdir)
        return self

    def ping(self) -> bool:
        try:
            return redis_command(self.port, "PING") == b"+PONG"
        except OSError:
            return False

    def flushall(self) -> None:
        """Empty every database: per-test isolation on one session-wide server."""
        reply = redis_command(self.port, "FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")

    def _flags(self) -> list[str]:
        return [
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.workdir),
        ]
