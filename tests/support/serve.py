"""Run ``pixelpipe serve`` (or another role) as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

CLI = [sys.executable, "-c", "from pixelpipe.cli import main; main()"]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``pixelpipe ARGS...`` in a subprocess with a bare environment (``env`` added), output
    captured as text."""
    base = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", **env}
    if "PYTHONPATH" in os.environ:
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([*CLI, *args], env=base, capture_output=True, text=True, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_pid(proc: subprocess.Popen[bytes], *, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after a short wait."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def start_fake_providers(
    log: Path, *, timeout_s: float = 90.0
) -> tuple[subprocess.Popen[bytes], str]:
    """``pixelpipe fake-providers`` on a free loopback port, ready: (process, base URL). Stopped
    by PID (:func:`stop_pid`) by the caller; here only when it never came up."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*CLI, "fake-providers", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"fake providers exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_pid(proc)
            raise RuntimeError(f"fake providers not ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


class Server:
    """A pixelpipe process. ``with Server(data_dir, env) as s: s.url`` — stopped by PID on exit."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        *,
        role: str = "serve",
        port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.role = role
        self.env = {
            **os.environ,
            "PIXELPIPE_DATA_DIR": str(data_dir),
            "PIXELPIPE_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"{role}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 30.0) -> Server:
        """Start the process (once: ``with Server(...).start() as s`` does not start a second
        one) and wait until it is ready; one that does not get ready is stopped."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [*CLI, self.role]
        if self.role in ("serve", "api"):
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if self.role in ("serve", "api"):
            try:
                self.wait_ready(timeout_s)
            except BaseException:
                self.stop()
                raise
        return self

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(
            f"{self.role} not ready in {timeout_s}s:\n{self.log.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def metric(base_url: str, name: str, labels: str = "") -> float:
    """Read one sample from /metrics (0 when absent)."""
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    prefix = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.split()[-1])
    return 0.0
