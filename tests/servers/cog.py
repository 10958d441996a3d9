"""A real cog model server for tests: ``python -m cog.server.http`` (coglet 0.23.1, Rust) serving
the CPU predictor in ``tests/cog_predictor`` on 127.0.0.1, without Docker.

How it runs: ``cog`` + ``coglet`` are dev dependencies (pyproject, uv.lock; coglet has wheels for
manylinux x86_64/aarch64 and macOS arm64 only). ``PORT=<p> COG_PREDICT_TYPE_STUB=predict.py:Runner
COG_MAX_CONCURRENCY=<slots> python -m cog.server.http --host 127.0.0.1 [--upload-url U]`` in the
predictor's directory; the parent spawns a worker ``python -c "import coglet; coglet.server.
_run_worker()"`` found on PATH (the venv's bin must come first). Start to READY takes ~0.5 s here.
SIGTERM: the server and its worker exit in ~0.1 s.

Protocol facts the cog provider and its fake are built on. [T] = checked by a test in
tests/servers/test_cog_server.py against coglet 0.23.1; [S] = read in replicate/cog's source or
docs (docs/http.md, docs/deploy.md; crates/coglet/src/transport/http/routes.rs = routes.rs,
crates/coglet/src/webhook.rs = webhook.rs, crates/coglet/src/orchestrator.rs,
crates/coglet-python/src/lib.rs + worker_bridge.rs), not exercised here. The source read is
replicate/cog main of 2026-08 (``fetch github:replicate/cog``); where it and the 0.23.1 wheel
differ, what was observed ([T]) is what holds.

Slots
- Slots = env ``COG_MAX_CONCURRENCY`` (default 1; overrides ``@cog.concurrent(max=N)`` and the
  deprecated cog.yaml ``concurrency.max``, which ``cog build`` bakes into that env var) [S
  deploy.md, lib.rs read_max_concurrency]. More than 1 needs an ``async def run``/``predict``
  (else setup fails: "COG_MAX_CONCURRENCY > 1 requires an async run() or predict() method") [S
  worker_bridge.rs]. Slots 1, 2, 4 run that many predictions at once [T].

GET /health-check (always 200) [T]
- ``{"status", "setup": {"started_at", "completed_at", "status": starting|succeeded|failed,
  "logs"}, "version": {"coglet": "0.23.1", "git_sha", "build_time", "python_sdk": "0.23.1",
  "python"}, "user_healthcheck_error"?}``.
- ``STARTING`` during setup, then ``READY``. ``BUSY`` only when *every* slot is taken (1 of 2
  busy still says READY). ``SETUP_FAILED`` when the predictor cannot load (the process stays up;
  ``setup.logs`` has the traceback text, e.g. "FileNotFoundError"). Worker process died (our
  ``crash`` input, like an OOM kill): ``UNHEALTHY`` with ``user_healthcheck_error:
  "Healthcheck error: protocol error: healthcheck channel closed"``, NOT ``DEFUNCT``; the slot
  is "poisoned - capacity permanently reduced" (log), so with 1 slot every new prediction gets
  409 until the server is restarted; the process stays up. ``DEFUNCT`` was not observed (docs:
  an unrecoverable error). Not checked: what a SIGTERM of cog does to a running prediction.

POST /predictions (sync; ``{"input", "id"?, "webhook"?, "webhook_events_filter"?}``) [T]
- 200 ``{"id", "logs", "metrics": {"predict_time": <float s>}, "output", "status":
  "succeeded"}``; ``id`` is ``pred_<hex>`` unless the body gives one. Our predictor's output is a
  list of ``data:image/png;base64,...`` URIs in return order. ``predict_time`` covers the
  predictor's run (>= ``sleep_s``): the GPU time to bill.
- A predictor exception: still HTTP 200, ``{"id", "error": "Prediction failed: Async prediction
  failed: PredictorFailedError: <msg>", "logs": "", "metrics": {"predict_time"}, "status":
  "failed"}`` (no ``output`` key).
- Input checked against ``.cog/openapi_schema.json`` (``cog build`` writes it; ours is written by
  hand and a test keeps it equal to ``Runner.run``; without the file coglet accepts anything):
  422 ``{"detail": [{"loc": ["body", "input", "<field>"], "msg": "Field required", "type":
  "value_error.missing"}]}`` or ``"msg": "3 is less than the minimum of 8", "type":
  "value_error"``. Unknown input fields are dropped silently. ``output_file_prefix`` in the body
  is ignored (coglet has no such field; outputs stay ``data:`` URIs).
- A sync client that disconnects (read timeout) cancels its prediction: the slot frees at once.
- Body not JSON: 400 text "Failed to parse the request body as JSON: ..." [observed by hand].
- Setup failed: 503 ``{"error": "Setup has not finished yet. Wait until it has finished, or GET
  /health-check for status.", "status": "failed"}``.

PUT /predictions/{id} + ``Prefer: respond-async`` (the idempotent async form) [T]
- New id: 202 ``{"id": "<id>", "status": "starting"}`` at once.
- Same id again WHILE IT RUNS: 202 with the running prediction's snapshot ``{"id", "input",
  "logs", "metrics": {}, "status": "starting"|"processing"}`` ("starting" until the worker has
  taken it, a few ms); no second prediction starts, and the webhook of the second PUT is
  ignored (the first one's keeps getting the events). Without ``Prefer`` a PUT of a running id
  also answers that 202 at once (it does not wait).
- Same id AFTER IT FINISHED: the server has forgotten it (predictions are removed when they end,
  routes.rs ``remove_prediction``): 202 ``starting`` and the prediction RUNS AGAIN. So a re-PUT
  after a restart adopts a running prediction but re-runs a finished one; the result of a
  finished one is only in its completed webhook (there is no GET of a prediction; docs/http.md:
  polling is not supported).
- Body ``id`` different from the URL's: 422 ``{"detail": [{"loc": ["body", "id"], "msg":
  "prediction ID must match the ID supplied in the URL", "type": "value_error"}]}``.
- ``Accept: text/event-stream`` (SSE) needs ``@cog.streaming``, else 406 [S routes.rs].

Busy [T]
- All slots taken: ``POST /predictions`` and a PUT of a new id get 409 ``{"error": "At capacity -
  all prediction slots busy", "status": "failed"}`` (no Retry-After header).
- The completed webhook is sent BEFORE the slot is freed: a PUT sent the moment that hook
  arrives got 409 in 2 of 30 tries here (202 otherwise) [observed by hand]. A 409 right after a
  completion is normal: wait (poll /health-check for READY) and retry.

POST /predictions/{id}/cancel [T]
- Running: 200 ``{}``; the completed webhook follows with ``{"id", "logs": "", "metrics":
  {"predict_time"}, "status": "canceled"}`` promptly (the run gets asyncio.CancelledError; a sync
  run gets ``cog.CancelationException`` [S docs/http.md]). Unknown or finished id: 404 ``{}``.

Webhooks (POST to the ``webhook`` URL, body = prediction state, JSON) [T]
- Headers: ``content-type: application/json``, ``user-agent: coglet/0.23.1``, ``accept: */*``;
  no signature. ``Authorization: Bearer <WEBHOOK_AUTH_TOKEN>`` only when that env var is set on
  the server (one token per server, not per job): carry a per-job secret in the URL (the query
  string is kept as given).
- Events with the default filter (start, output, logs, completed), for one image:
  start ``{"id", "logs": "", "metrics": {}, "status": "processing"}`` (docs say "starting";
  0.23.1 sends "processing"), logs (same + ``logs``), output (same + ``output``), completed
  ``{"id", "logs", "metrics": {"predict_time"}, "output", "status": "succeeded"}``; failed adds
  ``error`` and has no ``output`` (a failed upload's hook keeps the outputs uploaded before it
  [observed by hand]). Non-terminal hooks are fire-and-forget (may arrive out of order, never
  retried); a logs hook within 500 ms of the previous hook is dropped, not delayed (env
  ``COG_THROTTLE_RESPONSE_INTERVAL``, seconds); output hooks are never throttled [S webhook.rs
  should_send].
- ``webhook_events_filter``: only the listed events are sent ([``"completed"``] → exactly one).
- The completed hook is retried on 429/500/502/503/504 and on connection errors, up to 12
  times, waiting 0.1 s × 2^attempt for attempt 1, 2, ... (each wait capped at 102.4 s; ~7 min
  in all) [T: one retry after a
  503, ~0.2 s later; rest S webhook.rs send_terminal]; any other non-2xx (400, 401, 404) is
  given up at once. So a webhook route that is down or restarting must answer 5xx/429, or not
  answer, for cog to retry.
- Worker crash: completed hook ``{"id", "error": "Worker crashed", "logs": "", "metrics":
  {"predict_time"}, "status": "failed"}``.

--upload-url U (server-wide) [T]
- Each file output is PUT to ``U/<file basename>`` (the predictor's file name, so not unique per
  prediction: namespace by the ``X-Prediction-Id`` request header) with ``content-type:
  image/png`` and the raw bytes. The output URL is the response's ``Location`` (query string
  stripped) or else the PUT URL. Uploads run at once, and each URL is appended when its PUT
  ends: the output list is in completion order, not return order. A non-2xx upload fails the
  prediction: 200 ``{"error": "Failed to upload output: upload returned status 500 Internal
  Server Error", "status": "failed", ...}``.

GET / lists the routes (``predictions_idempotent_url``, ``predictions_cancel_url``, ...);
GET /openapi.json is the schema file (503 ``{"error": "OpenAPI schema not available"}`` without
it). POST /shutdown exists [S].
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
    environment (e.g. ``WEBHOOK_AUTH_TOKEN``). ``port``: listen there at every start (a restart
    comes back at the same URL), else on a free port picked at each start.
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
        port: int | None = None,
    ) -> None:
        super().__init__(workdir, f"cog-{slots}-slots.log", start_timeout=start_timeout)
        self.slots = slots
        self.predictor_dir = predictor_dir
        self.predictor_ref = predictor_ref
        self.upload_url = upload_url
        self.expect = expect
        self.extra_env = env or {}
        self.fixed_port = port  # None: a free port at each start

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        if importlib.util.find_spec("coglet") is None:
            raise ServerStartError("coglet not installed: `uv sync --group dev` (cog, coglet)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.fixed_port or free_port()
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
