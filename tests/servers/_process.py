"""Process plumbing shared by the real-server helpers: free ports, readiness, stop by PID."""

from __future__ import annotations

import atexit
import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"


class ServerStartError(RuntimeError):
    """A test server could not be started; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: all sockets are held open together so none is handed out twice."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in socks]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_port_pair(offset: int = 10000) -> int:
    """A free port P such that P + ``offset`` is free too (SeaweedFS derives gRPC ports so)."""
    for _ in range(200):
        port = free_port()
        if port + offset < 65536 and port_is_free(port + offset):
            return port
    raise ServerStartError(f"no free port pair (P, P+{offset}) on {LOOPBACK}")


def log_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


def wait_until(
    ready: Callable[[], bool],
    *,
    proc: subprocess.Popen[bytes],
    what: str,
    log: Path,
    timeout: float,
) -> None:
    """Poll ``ready`` until it is true; fail fast if the process dies, clearly if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(
                f"{what} exited with code {proc.returncode} before it was ready; "
                f"log {log}:\n{log_tail(log)}"
            )
        if ready():
            return
        time.sleep(0.05)
    raise ServerStartError(f"{what} not ready after {timeout:.0f}s; log {log}:\n{log_tail(log)}")


def stop_process(
    proc: subprocess.Popen[bytes] | None, *, sig: int = signal.SIGTERM, grace_s: float = 10.0
) -> None:
    """Send ``sig`` to the PID, then SIGKILL after ``grace_s`` (weed may ignore SIGTERM)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)


def can_connect(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
        return True
    return False


class DetachedServer:
    """A server process of our own: started in its own session with output to ``log``, waited
    for until ``ready``, stopped by PID (``stop_signal``, then SIGKILL after ``grace_s``) — at
    exit too. Subclasses give the command line and the readiness check."""

    what = "server"
    stop_signal = signal.SIGTERM
    grace_s = 10.0

    def __init__(self, workdir: Path, log_name: str, *, start_timeout: float) -> None:
        self.workdir = workdir
        self.log = workdir / log_name
        self.start_timeout = start_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def launch(
        self, args: list[str], ready: Callable[[], bool], **popen: Any
    ) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **popen,
            )
        atexit.register(self.stop)
        try:
            wait_until(
                ready, proc=self._proc, what=self.what, log=self.log, timeout=self.start_timeout
            )
        except BaseException:
            self.stop()
            raise
        return self._proc

    def stop(self) -> None:
        stop_process(self._proc, sig=self.stop_signal, grace_s=self.grace_s)

    def start(self) -> Self:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
