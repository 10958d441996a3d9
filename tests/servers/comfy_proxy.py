"""The real ``comfy-api-proxy`` (PyPI 0.1.6, MIT; Comfy-Org) in front of the fake ComfyUI.

How it runs: ``comfy-api-proxy`` is a dev dependency (pyproject, uv.lock; it brings aiohttp and
blake3). The fake ComfyUI is ``pixelpipe fake-providers`` (mounted at ``BASE/comfyui``); the proxy
is ``python -m comfy_api_proxy.cli run --comfyui BASE/comfyui --host 127.0.0.1 --port P
--state-dir DIR`` (``--state-dir``: its SQLite state, jobs and idempotency keys, WAL; without it
everything is in memory). ``--token T`` would require ``Authorization: Bearer T`` on
``/api/v2/*``. Both stop by PID (SIGTERM, then SIGKILL). Ready when ``GET /api/v2/health``
answers ``{"status": "healthy", "upstream": URL}`` (it does not probe ComfyUI).

What the proxy calls on ComfyUI [S = read in comfy_api_proxy 0.1.6 app.py/realtime.py, T =
checked by tests/servers/test_comfy_proxy.py against the fake]:
- submit: ``POST /prompt {"prompt", "prompt_id": <job id>, "client_id": <job id>}`` — the job id
  is a uuid4 the proxy makes, used as ComfyUI's prompt_id AND client_id [S, T].
- status: ``GET /history/{id}`` (terminal when present: ``execution_interrupted`` among the
  messages → ``canceled``; ``status_str == "success"`` → ``succeeded``; else ``failed`` with
  ``error {code: "node_execution_error", message: <exception_message>, node_id, class_type}``),
  else ``GET /queue`` (running → ``running`` with an indeterminate ``progress {value: 0,
  nodes_done: 0, nodes_total: 0}``; pending → ``queued`` + ``queue_position`` (1-based)); in
  neither → ``expired`` for a job it knows, 404 for one it does not [S, T].
- cancel: ``POST /api/jobs/{id}/cancel`` (ComfyUI ≥ 2026-06, PR #14493), then the status; a
  running job answers ``canceling`` [S, T]. It never calls ``/interrupt`` or ``/queue`` delete.
- events: ``WS /ws?clientId=<job id>`` with ``feature_flags {"supports_preview_metadata": true}``
  sent first, so previews come as type-4 frames (with the node id) [S, T].
- outputs: ``GET /view?filename&subfolder&type`` streamed through
  ``/api/v2/assets/{asset id}/content`` (the asset id is an HMAC-signed, job-scoped token) [S, T].

What a v2 client sees (the facts the Comfy API v2 backend is built on) [T unless S]:
- ``POST /api/v2/jobs {"workflow": <API-format graph>}`` → 201 job ``{id, status: "queued",
  created_at, started_at: null, completed_at: null, expires_at (+24 h), queue_position: null,
  progress: null, outputs: [], error: null, outputs_reused: false, urls: {self, events,
  cancel}}``. A UI-format graph → 422 ``workflow_format_ui``; ComfyUI's 400 → 422
  ``invalid_workflow`` with ``details.node_errors`` = ComfyUI's ``node_errors`` and message =
  ComfyUI's ``error.message``; ComfyUI unreachable → 503 ``upstream_unreachable`` [S].
- ``Idempotency-Key``: single-use, NOT replayed: the same key again (any body) → 422
  ``idempotency_key_reuse``; keys are released when ComfyUI refused the workflow (a retry may
  reuse them) and held when ComfyUI was unreachable [S]. (The reference notes' "replay with
  ``Idempotency-Replayed``" and "409 + Retry-After" describe Comfy Cloud's contract, not 0.1.6.)
- Errors are ``{"error": {"code", "message", "details"}}``; an unknown job id → 404
  ``not_found`` (also for cancel).
- ``GET /api/v2/jobs/{id}`` on success: ``outputs: [{node_id, name, type: "image",
  content_type: "image/png", size_bytes: 0, id, hash: null, url, url_expires_at, job_id}]`` —
  ``hash`` is always null and ``size_bytes`` 0 in 0.1.6 (no blake3 of outputs: verify the bytes
  yourself); ``url`` serves ComfyUI's bytes unchanged. No ``metrics`` at all (no
  ``execution_ms``, no ``queue_ms``): the GPU time must be measured by the client (e.g. from
  ``execution_start``/``execution_success`` timestamps it cannot see, or wall time);
  ``started_at``/``completed_at`` stay null. ``GET`` of a running job gives an indeterminate
  ``progress {value: 0.0, nodes_done: 0, nodes_total: 0}``: live progress is only in the SSE.
- No ``queue_full``/429 on submit in 0.1.6 (nothing limits the queue); the only 429 is
  ``too_many_streams`` (more than 8 open SSE streams, ``Retry-After: 5``) [S].
- ``GET …/events`` (SSE, no ids, no Last-Event-ID): ``status`` snapshot first
  (``{"status", "queue_position"?}``), then ``progress`` (``{value 0–1, nodes_done,
  nodes_total, current_node, step, steps}``, from ComfyUI's ``progress`` or ``progress_state``,
  throttled to one per 0.5 s) and ``preview`` (``{node_id, content_type: "image/jpeg",
  data_base64}``, throttled to one per 0.5 s), ``output`` per output, and a final ``status``;
  then the stream ends. A stream opened after the end gives ``status`` + ``output`` at once. The
  WebSocket only reaches the job's events if it connects before they are sent (ComfyUI does
  not replay): a stream opened late misses earlier previews [S].
- Assets: ``POST /api/v2/assets`` (multipart ``file`` + ``file_path`` such as
  ``input/in.png``) → 201 ``{id, hash: "blake3:<hex>", size_bytes, content_type, file_path,
  created_at, url, url_expires_at, created_new: true}``; the same bytes again → 200, the same
  asset, ``created_new: false``; the bytes reach ComfyUI through ``POST /upload/image``. A
  workflow input ``{"__type": "core/ASSET", "info": {"id"|"hash"}}`` is replaced by the
  uploaded file's name before ``/prompt`` [S].
- ``POST …/cancel``: idempotent; a queued job goes ``canceled`` only once ComfyUI drops it
  (then ``expired``: a dequeued prompt has no history — the proxy reports it as ``expired``, not
  ``canceled``); a running one answers ``canceling`` then becomes ``canceled``.
- A ComfyUI restart that loses the queue: a job the proxy knows becomes ``expired``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any, Self

import httpx

from tests.servers._process import LOOPBACK, DetachedServer, ServerStartError, free_port

CLI = [sys.executable, "-c", "from pixelpipe.cli import main; main()"]


def _answers(url: str, expect: int = 200) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == expect
    except httpx.HTTPError:
        return False


class FakeComfyServer(DetachedServer):
    """``pixelpipe fake-providers`` on a free port; the ComfyUI fake is at :attr:`url`."""

    what = "pixelpipe fake-providers"
    grace_s = 5.0

    def __init__(self, workdir: Path, *, start_timeout: float = 90.0) -> None:
        super().__init__(workdir, "fake-providers.log", start_timeout=start_timeout)

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/comfyui"

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        args = [*CLI, "fake-providers", "--host", LOOPBACK, "--port", str(self.port)]
        self.launch(args, lambda: _answers(self.url + "/queue"))
        return self

    def reset(self) -> None:
        """Default behaviours, an empty queue, nothing running (waits until idle)."""
        self.control(reset=True)
        deadline = time.monotonic() + 10
        while not _answers(self.url + "/prompt"):  # back from a crash a test caused
            if time.monotonic() > deadline:
                raise TimeoutError("the fake ComfyUI did not come back")
            time.sleep(0.05)
        httpx.post(self.url + "/queue", json={"clear": True}, timeout=5)
        httpx.post(self.url + "/interrupt", timeout=5)
        while httpx.get(self.url + "/prompt", timeout=5).json()["exec_info"]["queue_remaining"]:
            if time.monotonic() > deadline:
                raise TimeoutError("the fake ComfyUI did not become idle")
            time.sleep(0.05)

    def control(self, **changes: Any) -> dict[str, Any]:
        """``POST /_control`` of the ComfyUI fake (behaviours: step_s, fail_node, crash…)."""
        resp = httpx.post(self.url + "/_control", json=changes, timeout=5)
        resp.raise_for_status()
        return dict(resp.json())


class ComfyProxy(DetachedServer):
    """``with ComfyProxy(tmp, comfyui_url) as proxy: proxy.url`` — the real comfy-api-proxy."""

    what = "comfy-api-proxy"
    grace_s = 5.0

    def __init__(self, workdir: Path, comfyui_url: str, *, start_timeout: float = 60.0) -> None:
        super().__init__(workdir, "comfy-api-proxy.log", start_timeout=start_timeout)
        self.comfyui_url = comfyui_url

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        if importlib.util.find_spec("comfy_api_proxy") is None:
            raise ServerStartError("comfy-api-proxy not installed: `uv sync --group dev`")
        state = self.workdir / "state"
        state.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        args = [
            sys.executable,
            "-m",
            "comfy_api_proxy.cli",
            "run",
            "--comfyui",
            self.comfyui_url,
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--state-dir",
            str(state),
        ]
        self.launch(args, lambda: _answers(self.url + "/api/v2/health"))
        return self


class ComfyStack:
    """The fake ComfyUI and the real proxy in front of it, started together, stopped together."""

    def __init__(self, workdir: Path) -> None:
        self.comfyui = FakeComfyServer(workdir / "comfyui")
        self.proxy = ComfyProxy(workdir / "proxy", "")

    def start(self) -> Self:
        self.comfyui.start()
        try:
            self.proxy.comfyui_url = self.comfyui.url
            self.proxy.start()
        except BaseException:
            self.comfyui.stop()
            raise
        return self

    def stop(self) -> None:
        self.proxy.stop()
        self.comfyui.stop()
