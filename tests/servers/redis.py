"""A real Redis for tests: Debian's ``redis-server`` on 127.0.0.1, no persistence, stopped by PID."""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.servers._process import LOOPBACK, ServerStartError, free_port, stop_process, wait_until


def redis_command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """Send one command (RESP) and return the raw first reply line; no client library needed."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(payload.encode())
        return s.recv(4096).split(b"\r\n", 1)[0]


class RedisServer:
    """``with RedisServer(tmp_dir) as r: r.url`` — ``redis://127.0.0.1:<port>/0``."""

    def __init__(self, workdir: Path, *, start_timeout: float = 20.0) -> None:
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.port = 0
        self.log = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> Self:
        binary = shutil.which("redis-server")
        if not binary:
            raise ServerStartError("redis-server not found: `apt-get install -y redis-server`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [binary, *self._flags()],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
        atexit.register(self.stop)
        try:
            wait_until(
                self.ping,
                proc=self._proc,
                what="redis-server",
                log=self.log,
                timeout=self.start_timeout,
            )
        except BaseException:
            self.stop()
            raise
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

    def stop(self) -> None:
        """SIGTERM (redis exits at once without persistence), SIGKILL after 5 s."""
        stop_process(self._proc, grace_s=5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

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
