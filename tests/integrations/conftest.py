"""Fixtures for the integration tests: fake providers as a subprocess, a webhook receiver."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelpipe.fakes.server import fake_env
from tests.support.serve import Server, start_fake_providers, stop_pid

STARTUP_S = 120.0  # imports + migrations on a busy 2-core machine
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Fakes:
    """``pixelpipe fake-providers`` running in a subprocess."""

    url: str
    proc: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        return fake_env(self.url)

    def control(self, **changes: Any) -> None:
        for name in ("replicate", "fal", "openai"):
            httpx.post(f"{self.url}/{name}/_control", json=changes, timeout=10).raise_for_status()

    def creates(self) -> int:
        total = 0
        for name in ("replicate", "fal", "openai"):
            total += int(httpx.get(f"{self.url}/{name}/_stats", timeout=10).json()["creates_total"])
        return total


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    log = tmp_path_factory.mktemp("fakes") / "fakes.log"
    proc, url = start_fake_providers(log, timeout_s=STARTUP_S)
    fk = Fakes(url, proc)
    fk.control(latency_s=0.2)
    try:
        yield fk
    finally:
        stop_pid(proc)


def start_server(data_dir: Path, env: dict[str, str]) -> Server:
    return Server(data_dir, env).start(timeout_s=STARTUP_S)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    path: str = ""  # path and query the POST was sent to


@dataclass
class Receiver:
    """A local webhook receiver: records every POST, answers with the next scripted status."""

    statuses: list[int] = field(default_factory=list)  # answered in order; then 200
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def wait_for(self, n: int, timeout_s: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.received)} webhook(s), expected {n}")
            time.sleep(0.05)
        return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                rec.received.append(
                    Received(
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        time.time(),
                        self.path,
                    )
                )
                status = rec.statuses.pop(0) if rec.statuses else 200
            payload = json.dumps({"ok": status < 300}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/pixelpipe"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
