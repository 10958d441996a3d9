"""A protocol-faithful fake of ComfyUI's native API (HTTP + WebSocket), for tests and demos.

Read from ComfyUI's own source (comfyanonymous/ComfyUI, mid-2025 ``server.py``, ``main.py``,
``execution.py``, ``comfy_execution/progress.py``, ``protocol.py``, as stored in the search
index; the whole repository was too large to fetch) and the merged PR Comfy-Org/ComfyUI#14493
(2026-06: ``POST /api/jobs/{id}/cancel``):

- Every route is served at ``/path`` and ``/api/path`` (``PromptServer.add_routes``).
- ``POST /prompt {"prompt", "client_id"?, "prompt_id"?, "front"?, "number"?, "extra_data"?}`` →
  200 ``{"prompt_id", "number", "node_errors"}``; ``prompt_id`` is the client's when given (else a
  uuid4); ``number`` counts from 0, ``front: true`` makes it negative (runs first). Invalid graph
  → 400 ``{"error": {"type", "message", "details", "extra_info"}, "node_errors": {...}}`` (see
  :mod:`pixelpipe.fakes.comfyui_nodes`); no ``prompt`` → 400 ``no_prompt``. The proxy's claim
  that newer ComfyUI refuses a non-UUID ``prompt_id`` is not verified here: any string is taken.
- ``GET /queue`` → ``{"queue_running": [item], "queue_pending": [item…]}``, item = ``[number,
  prompt_id, prompt, extra_data, outputs_to_execute]`` (``extra_data`` holds ``client_id``).
  ``POST /queue {"delete": [ids]}`` / ``{"clear": true}`` → 200, empty body (pending only; a
  running or unknown id is silently ignored). ``GET /prompt`` → ``{"exec_info":
  {"queue_remaining"}}``.
- ``POST /interrupt`` (body optional): stops the running prompt at its next step or node;
  ``{"prompt_id"}`` interrupts only when that prompt is the running one. 200, empty body; while
  idle a no-op (the flag is cleared when the next prompt starts).
- ``POST /api/jobs/{id}/cancel`` (newer ComfyUI; what comfy-api-proxy calls): interrupt if it
  runs, dequeue if pending; 200 either way, also for an unknown or finished id. The real body is
  not documented in the PR text read; the fake answers ``{"job_id", "cancelled": bool}``.
- ``GET /history/{id}`` → ``{}`` until the prompt is done, then ``{id: {"prompt": item,
  "outputs": {node: {"images": [...]}}, "status": {"status_str": "success"|"error",
  "completed", "messages": [[event, data]…]}, "meta": {...}}}``; ``GET /history?max_items=``;
  ``POST /history {"delete"|"clear"}``.
- ``GET /view?filename&subfolder&type`` → the PNG (404 unknown; 400 for ``..`` or a leading
  ``/``); ``POST /upload/image`` (multipart ``image``, ``type``, ``subfolder``, ``overwrite``) →
  ``{"name", "subfolder", "type"}`` (a clash gets `` (1)`` added unless identical bytes);
  ``POST /upload/mask`` (the same + ``original_ref``: that file with the upload's alpha);
  ``GET /system_stats``, ``GET /features``, ``GET /object_info[/{class}]``.
- WebSocket ``/ws?clientId=``: see :mod:`pixelpipe.fakes.comfyui_ws` (delivery, preview frames)
  and :mod:`pixelpipe.fakes.comfyui_run` (message order). Prompt-scoped messages go to the
  client that queued the prompt (its ``client_id``) only; ``status`` (queue changes) and, with
  no client, nothing else, are broadcast. A single worker runs prompts one at a time.
- Like the real server with ``--preview-method auto`` (ComfyUI's default sends no previews),
  a sampler step sends a preview; ``previews: false`` turns them off.

Behaviours (:class:`ComfyBehaviour`, ``POST /_control``): ``step_s`` per sampler step,
``node_s`` per other node, ``fail_node`` (a node id or class_type that raises ``fail_type`` /
``fail_message`` → ``execution_error``), ``crash_next`` (the next N prompts kill the server at
sampler step ``crash_at_step``: sockets close, connections drop, it is down ``crash_restart_s``
and comes back with an empty queue and history — output files survive, as on disk) and the
action ``{"crash": true}`` (die now). ``GET /_stats``: ``calls`` per route, ``creates`` per
output node class.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from pixelpipe.fakes.comfyui_files import Files
from pixelpipe.fakes.comfyui_nodes import NODE_CLASSES, object_info
from pixelpipe.fakes.comfyui_queue import PromptQueue, QueueItem
from pixelpipe.fakes.comfyui_run import Died, Executor, Outputs, Run, RunKnobs
from pixelpipe.fakes.comfyui_validate import validate_prompt
from pixelpipe.fakes.comfyui_ws import SERVER_FEATURES, Hub
from pixelpipe.fakes.common import Behaviour, FakeServer
from pixelpipe.fakes.crash import CrashSwitch, drops_connections

COMFYUI_VERSION = "0.3.60"


@dataclass
class ComfyBehaviour(Behaviour):
    """The shared behaviours plus ComfyUI's own (see the module docstring)."""

    step_s: float = 0.02
    node_s: float = 0.0
    previews: bool = True
    fail_node: str = ""
    fail_type: str = "RuntimeError"
    fail_message: str = "fake failure"
    crash_next: int = 0
    crash_at_step: int = 2
    crash_restart_s: float = 1.0


class FakeComfyUI(FakeServer):
    """The fake; ``app`` is the ASGI app (mount it anywhere: ``ws`` URLs follow the mount)."""

    def __init__(
        self, *, behaviour: Behaviour | None = None, public_url: str | None = None
    ) -> None:
        knobs = _own_behaviour(behaviour)
        super().__init__(knobs, public_url)
        self.knobs = knobs
        self.hub = Hub()
        self.outputs = Outputs()
        self.files = Files(self.outputs)
        self.switch = CrashSwitch()
        self._fresh_state()
        self._worker: asyncio.Task[None] | None = None
        starlette = Starlette(routes=self._routes(), lifespan=self._lifespan)
        self.app = _drops_websockets(drops_connections(starlette, self.switch), self.switch)

    def _fresh_state(self) -> None:
        """A (re)started server: empty queue and history, no cache, numbers from 0."""
        self.queue = PromptQueue(self._queue_updated)
        self.executor = Executor(
            self.hub, self.outputs, self.core.background.sleep, self.files.input_file
        )
        self.number = 0

    def _routes(self) -> list[BaseRoute]:
        routes: list[tuple[str, Any, list[str]]] = [
            ("/prompt", self.post_prompt, ["POST"]),
            ("/prompt", self.get_prompt, ["GET"]),
            ("/queue", self.get_queue, ["GET"]),
            ("/queue", self.post_queue, ["POST"]),
            ("/interrupt", self.interrupt, ["POST"]),
            ("/jobs/{job_id}/cancel", self.cancel_job, ["POST"]),
            ("/history", self.get_history, ["GET"]),
            ("/history", self.post_history, ["POST"]),
            ("/history/{prompt_id}", self.get_history_item, ["GET"]),
            ("/view", self.files.view, ["GET"]),
            ("/upload/image", self.files.upload_image, ["POST"]),
            ("/upload/mask", self.files.upload_mask, ["POST"]),
            ("/system_stats", self.system_stats, ["GET"]),
            ("/features", self.features, ["GET"]),
            ("/object_info", self.get_object_info, ["GET"]),
            ("/object_info/{node_class}", self.get_object_info_node, ["GET"]),
        ]
        out: list[BaseRoute] = []
        for prefix in ("", "/api"):
            out.append(WebSocketRoute(prefix + "/ws", self.websocket))
            out.extend(Route(prefix + path, fn, methods=m) for path, fn, m in routes)
        return [*out, *self.core.control_routes(self._actions)]

    # --- prompts and the queue ------------------------------------------------------------

    async def post_prompt(self, request: Request) -> Response:
        self.core.stats.calls["prompt"] += 1
        body = await _json(request)
        if "number" in body:
            number: float = float(body["number"])
        else:
            number = -self.number if body.get("front") else self.number
            self.number += 1
        if "prompt" not in body:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return JSONResponse({"error": error, "node_errors": {}}, status_code=400)
        prompt = body["prompt"]
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        valid = validate_prompt(prompt, self.files.has_input)
        extra = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        if not valid.ok:
            return JSONResponse(
                {"error": valid.error, "node_errors": valid.node_errors}, status_code=400
            )
        self.queue.put((number, prompt_id, prompt, extra, valid.outputs))
        self._ensure_worker()
        num = int(number) if number == int(number) else number
        return JSONResponse(
            {"prompt_id": prompt_id, "number": num, "node_errors": valid.node_errors}
        )

    async def get_prompt(self, request: Request) -> Response:
        return JSONResponse(self._queue_info())

    async def get_queue(self, request: Request) -> Response:
        self.core.stats.calls["queue"] += 1
        running, pending = self.queue.current()
        return JSONResponse({"queue_running": running, "queue_pending": pending})

    async def post_queue(self, request: Request) -> Response:
        body = await _json(request)
        if body.get("clear"):
            self.queue.wipe()
        for prompt_id in body.get("delete") or []:
            self.queue.delete(str(prompt_id))
        return Response(status_code=200)

    async def interrupt(self, request: Request) -> Response:
        self.core.stats.calls["interrupt"] += 1
        body = await _json(request)
        target = body.get("prompt_id")
        if not target or target in self.queue.running_ids():
            self.executor.interrupted = True
        return Response(status_code=200)

    async def cancel_job(self, request: Request) -> Response:
        self.core.stats.calls["cancel"] += 1
        job_id = request.path_params["job_id"]
        cancelled = job_id in self.queue.running_ids()
        if cancelled:
            self.executor.interrupted = True
        else:
            cancelled = self.queue.delete(job_id)
        return JSONResponse({"job_id": job_id, "cancelled": cancelled})

    async def get_history(self, request: Request) -> Response:
        q = request.query_params
        max_items = int(q["max_items"]) if "max_items" in q else None
        offset = int(q.get("offset", "-1"))
        return JSONResponse(self.queue.get_history(max_items=max_items, offset=offset))

    async def get_history_item(self, request: Request) -> Response:
        self.core.stats.calls["history"] += 1
        return JSONResponse(self.queue.get_history(request.path_params["prompt_id"]))

    async def post_history(self, request: Request) -> Response:
        body = await _json(request)
        if body.get("clear"):
            self.queue.wipe_history()
        for prompt_id in body.get("delete") or []:
            self.queue.delete_history(str(prompt_id))
        return Response(status_code=200)

    # --- server info ------------------------------------------------------------------------

    async def system_stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "system": {
                    "os": "posix",
                    "ram_total": 68719476736,
                    "ram_free": 34359738368,
                    "comfyui_version": COMFYUI_VERSION,
                    "required_frontend_version": "1.26.13",
                    "python_version": "3.11.9",
                    "pytorch_version": "2.8.0+cu128",
                    "embedded_python": False,
                    "argv": ["main.py", "--preview-method", "auto"],
                },
                "devices": [
                    {
                        "name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
                        "type": "cuda",
                        "index": 0,
                        "vram_total": 25386352640,
                        "vram_free": 24000000000,
                        "torch_vram_total": 0,
                        "torch_vram_free": 0,
                    }
                ],
            }
        )

    async def features(self, request: Request) -> Response:
        return JSONResponse(dict(SERVER_FEATURES))

    async def get_object_info(self, request: Request) -> Response:
        return JSONResponse(object_info())

    async def get_object_info_node(self, request: Request) -> Response:
        name = request.path_params["node_class"]
        return JSONResponse({name: NODE_CLASSES[name].info()} if name in NODE_CLASSES else {})

    # --- websocket and the worker ----------------------------------------------------------

    async def websocket(self, ws: WebSocket) -> None:
        await self.hub.serve(ws, self._queue_info())

    def _queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}

    def _queue_updated(self) -> None:
        """``queue_updated``: a ``status`` broadcast (sent from a task, in order)."""
        self.core.background.spawn(self.hub.send("status", {"status": self._queue_info()}))

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        while self._worker is asyncio.current_task():  # a crash retires this worker
            queue = self.queue
            item, task_id = await queue.get()
            await self._run(queue, item, task_id)

    async def _run(self, queue: PromptQueue, item: QueueItem, task_id: int) -> None:
        _, prompt_id, prompt, extra, outputs = item
        run = Run(prompt_id, prompt, outputs, extra.get("client_id"))
        crash = self.knobs.take("crash_next")
        try:
            await self.executor.execute(run, self._run_knobs(crash))
        except Died:
            if crash:
                await self._crash()
            return
        for node in run.ui:
            self.core.stats.creates[prompt[node]["class_type"]] += 1
        status = {
            "status_str": "success" if run.success else "error",
            "completed": run.success,
            "messages": run.messages,
        }
        meta = {
            n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n}
            for n in run.ui
        }
        queue.task_done(task_id, {"outputs": run.ui, "meta": meta}, status)
        if run.client_id is not None:
            await self.hub.send("executing", {"node": None, "prompt_id": prompt_id}, run.client_id)
        self.hub.last_node_id = None

    def _run_knobs(self, crash: bool) -> RunKnobs:
        k = self.knobs
        return RunKnobs(
            step_s=k.step_s,
            node_s=k.node_s,
            fail_node=k.fail_node,
            fail_type=k.fail_type,
            fail_message=k.fail_message,
            previews=k.previews,
            crash_at_step=k.crash_at_step if crash else 0,
        )

    async def _crash(self) -> None:
        """The process dies: sockets close, requests drop, and the restarted server has lost its
        queue and history (not its output files)."""
        self.switch.crash(self.knobs.crash_restart_s)
        await self.hub.close_all()
        old = self.queue
        self._fresh_state()
        old.wipe()
        if self._worker is not None and self._worker is not asyncio.current_task():
            self._worker.cancel()
        self._worker = None

    def _actions(self, changes: dict[str, Any]) -> None:
        if changes.pop("crash", False):
            self.core.background.spawn(self._crash())

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
        await super().aclose()


def _own_behaviour(behaviour: Behaviour | None) -> ComfyBehaviour:
    if isinstance(behaviour, ComfyBehaviour):
        return behaviour
    own = ComfyBehaviour()
    if behaviour is not None:
        own.update(dataclasses.asdict(behaviour))
    return own


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _drops_websockets(app: ASGIApp, switch: CrashSwitch) -> ASGIApp:
    """While the fake is down a WebSocket handshake is refused (connection closed)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and switch.down:
            await send({"type": "websocket.close", "code": 1011})
            return
        await app(scope, receive, send)

    return wrapped
