"""Process plumbing shared by the real-server helpers: free ports, readiness, stop by PID."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

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
