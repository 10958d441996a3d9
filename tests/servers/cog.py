"""A real cog model server for tests: ``python -m cog.server.http`` (coglet 0.23.1, Rust) serving
the CPU predictor in ``tests/cog_predictor`` on 127.0.0.1, without Docker.

FACTS (observed here; tests/servers/test_cog_server.py checks each)
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Self

import httpx

from tests.servers._process import LOOPBACK, DetachedServer, ServerStartError, free_port

PREDICTOR_DIR = Path(__file__).resolve().parent.parent / "cog_predictor"
PREDICTOR_REF = "predict.py:Runner"
COG_VERSION = "0.23.1"
# /health-check states that end the start: the server stays up in them but never gets READY.
FINAL_START_STATES = frozenset({"SETUP_FAILED", "DEFUNCT"})


class CogServer(DetachedServer):
    """``with CogServer(tmp_dir, slots=2) as cog: cog.url`` — ``http://127.0.0.1:<port>``.

    ``slots`` is ``COG_MAX_CONCURRENCY`` (more than 1 needs an async ``run``, as ours is).
    ``upload_url`` is ``--upload-url`` (file outputs are PUT there instead of returned as
    ``data:`` URIs). ``expect`` is the ``/health-check`` status that counts as started: READY,
    or SETUP_FAILED to test a predictor whose setup fails. ``env`` adds to the server's
    environment (e.g. ``WEBHOOK_AUTH_TOKEN``).
    """

    what = "cog server (coglet)"
    grace_s = 5.0  # SIGTERM: coglet exits in ~0.1 s and its worker goes with it

    def __init__(
        self,
        workdir: Path,
        *,
        slots: int = 1,
        predictor_dir: Path = PREDICTOR_DIR,
        predictor_ref: str = PREDICTOR_REF,
        upload_url: str | None = None,
        expect: str = "READY",
        env: dict[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        super().__init__(workdir, f"cog-{slots}-slots.log", start_timeout=start_timeout)
        self.slots = slots
        self.predictor_dir = predictor_dir
        self.predictor_ref = predictor_ref
        self.upload_url = upload_url
        self.expect = expect
        self.extra_env = env or {}

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        if importlib.util.find_spec("coglet") is None:
            raise ServerStartError("coglet not installed: `uv sync --group dev` (cog, coglet)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        args = [sys.executable, "-m", "cog.server.http", "--host", LOOPBACK]
        if self.upload_url:
            args += ["--upload-url", self.upload_url]
        self.launch(args, self._started, cwd=self.predictor_dir, env=self._env())
        return self

    def _env(self) -> dict[str, str]:
        # The worker subprocess runs `python` from PATH: this interpreter's bin directory first.
        bin_dir = Path(sys.executable).parent
        if not (bin_dir / "python").exists():
            raise ServerStartError(f"no `python` beside {sys.executable}: coglet's worker needs it")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COG_", "WEBHOOK_"))}
        env |= {
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "PORT": str(self.port),
            "COG_PREDICT_TYPE_STUB": self.predictor_ref,
            "COG_MAX_CONCURRENCY": str(self.slots),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        return env | self.extra_env

    def health(self) -> dict[str, Any] | None:
        """The ``/health-check`` body, or None while nothing answers."""
        try:
            response = httpx.get(f"{self.url}/health-check", timeout=2.0)
        except httpx.TransportError:
            return None
        body: dict[str, Any] = response.json()
        return body

    def status(self) -> str | None:
        health = self.health()
        return None if health is None else str(health["status"])

    def _started(self) -> bool:
        health = self.health()
        status = None if health is None else health["status"]
        if status == self.expect:
            return True
        if status in FINAL_START_STATES:
            setup = (health or {}).get("setup") or {}
            raise ServerStartError(
                f"{self.what} reached {status}, not {self.expect}: {setup.get('logs', '')}"
            )
        return False


class CogServers:
    """One server per slot count, started on first use and kept for the session."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._servers: dict[int, CogServer] = {}

    def get(self, slots: int = 1) -> CogServer:
        if slots not in self._servers:
            server = CogServer(self.workdir / f"slots-{slots}", slots=slots)
            self._servers[slots] = server.start()
        return self._servers[slots]

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()
