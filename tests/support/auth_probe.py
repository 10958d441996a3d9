"""The auth-window probe: keyless POSTs fired at a real ``pixelpipe serve`` the moment it listens.

A data directory gets an API key from the CLI (``pixelpipe keys create``, its own process); the
server is started on a free loopback port and, as soon as a TCP connect succeeds (no readiness
wait), ``burst`` concurrent ``POST /v1/generations`` without a key are sent. Every one must be
refused with 401: a single 2xx means the server served a request anonymously while keys exist.
The server is then SIGKILLed and restarted, and the burst repeated. Used by
``tests/security/test_auth_window.py`` and ``bench/auth_window.py`` (which prints the figures).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.serve import CLI, Server

BODY = {"prompt": "a lighthouse at dusk", "model": "preview", "size": "64x64"}


@dataclass
class ProbeRun:
    """One start (or restart) of the server and the answers to its burst."""

    label: str
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)


def create_key_cli(data_dir: Path) -> str:
    """``pixelpipe keys create --json`` in its own process; returns the key id."""
    env = {**os.environ, "PIXELPIPE_DATA_DIR": str(data_dir), "PIXELPIPE_LOG_LEVEL": "WARNING"}
    made = subprocess.run(
        [*CLI, "keys", "create", "--name", "probe", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key_id: str = json.loads(made.stdout)["id"]
    return key_id


def _wait_listening(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.proc is not None
        if server.proc.poll() is not None:
            raise RuntimeError(f"serve exited early:\n{server.log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"serve did not listen within {timeout_s}s")


async def _burst(url: str, n: int) -> Counter[int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        answers = await asyncio.gather(
            *(client.post("/v1/generations", json={**BODY, "seed": i}) for i in range(n))
        )
    return Counter(r.status_code for r in answers)


def start_and_burst(server: Server, label: str, burst: int, timeout_s: float = 60.0) -> ProbeRun:
    """Start ``server`` (not waiting for readiness) and fire the burst as soon as it listens."""
    server.data_dir.mkdir(parents=True, exist_ok=True)
    args = [*CLI, server.role, "--host", "127.0.0.1", "--port", str(server.port)]
    with server.log.open("ab") as log:
        server.proc = subprocess.Popen(args, env=server.env, stdout=log, stderr=subprocess.STDOUT)
    _wait_listening(server, timeout_s)
    return ProbeRun(label, asyncio.run(_burst(server.url, burst)))


def probe(data_dir: Path, *, burst: int = 30, restarts: int = 1) -> list[ProbeRun]:
    """Key via the CLI, then start + burst, and ``restarts`` × (SIGKILL, restart + burst)."""
    create_key_cli(data_dir)
    server = Server(data_dir)
    runs: list[ProbeRun] = []
    try:
        runs.append(start_and_burst(server, "first start", burst))
        for i in range(restarts):
            server.kill()
            runs.append(start_and_burst(server, f"restart {i + 1} after SIGKILL", burst))
    finally:
        server.stop()
    return runs
