"""One ComfyUI server (its native API) as a provider: a backend of kind ``comfyui``.

How a run goes (wire format in ``answers.py``, the socket in ``live.py``):

- **inputs** (image-to-image, inpainting): each input image and the mask are uploaded first
  (``uploads.py``: ``/upload/image``, ``/upload/mask``, content-derived names) and the
  workflow's LoadImage / LoadImageMask inputs get the names ComfyUI gave them.
- **submit**: ``POST /prompt {"prompt": <the model's workflow rendered for the request>,
  "client_id": <this process's socket>, "prompt_id": <ours>}``. The prompt id is a UUID derived
  from the attempt's run tag, so it is known before the call: a submit interrupted by a crash is
  looked up (:meth:`ComfyUIProvider.find_run`: ``/history/{id}``, then ``/queue``) rather than
  queued again; so is one whose answer was lost (a read timeout, a dropped connection: the
  prompt may have been queued) before it is reported as ambiguous. A refused graph (400
  ``node_errors``) is ProviderInvalidInput naming each node.
- **poll**: ``/history/{id}`` (ended: the output node's images, fetched from ``/view`` and
  returned as bytes, so there is no output host to allow; or the ``execution_error`` naming the
  node), else ``/queue`` (running: the socket's step figures and preview; pending: its place),
  else, after :data:`LOST_GRACE_S`, ProviderJobLost: ComfyUI restarted and its queue is gone
  (it keeps queue and history in memory only). It is marked transient: the job is retried with
  a new attempt while it has attempts left, then failed with that reason; never left waiting.
- **GPU time**: ComfyUI reports none. The history's ``execution_start`` → end message timestamps
  (``gpu_time_source="server"``), else the wall time since the submit (``"wall"``).
- **cancel**: ``POST /interrupt {"prompt_id"}`` only while our prompt is the running one
  (an older ComfyUI ignores the id and stops whatever runs: it is sent only then), else
  ``POST /queue {"delete": [id]}``; nothing for a prompt that ended. Idempotent.
- **health**: ``GET /system_stats`` answers → up; ``/queue`` has a running prompt → BUSY.

Errors: connection failures and 5xx are ProviderUnavailable, other refusals as for every
provider (``providers/http.py``); ``api_key``, when set, is sent as ``Authorization: Bearer``
(for a proxy in front: ComfyUI itself checks none).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from pixelpipe.errors import (
    PixelpipeError,
    ProviderError,
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderUnavailable,
    Unauthorized,
)
from pixelpipe.providers.base import (
    BackendHealth,
    HealthState,
    Output,
    ProviderRequest,
    ProviderUpdate,
    RunState,
)
from pixelpipe.providers.comfyui.answers import (
    GPU_TIME_SERVER,
    GPU_TIME_WALL,
    Ended,
    prompt_id,
    queue_place,
    queue_sizes,
    read_history,
    refusal_message,
)
from pixelpipe.providers.comfyui.live import LiveFeed
from pixelpipe.providers.comfyui.uploads import upload_inputs
from pixelpipe.providers.http import DEFAULT_TIMEOUT, ProviderHTTP
from pixelpipe.providers.previews import image_type
from pixelpipe.providers.registration import Backend
from pixelpipe.providers.run_tag import RunRef
from pixelpipe.workflows import Workflow

RUNNING_POLL_S = 0.5  # while it runs: the socket's figures reach the job's events this often
QUEUED_POLL_S = 1.0
LOST_GRACE_S = 3.0  # found nowhere for this long (queue and history gone): lost
HEALTH_TIMEOUT = httpx.Timeout(5.0)
_OUT_OF_MEMORY = "OutOfMemory"  # torch.OutOfMemoryError: another server may have the memory


class ComfyUIProvider:
    """One backend of kind ``comfyui``; its name is the backend's."""

    supports_webhooks = False

    def __init__(
        self,
        backend: Backend,
        *,
        secret: bytes,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        lost_grace_s: float = LOST_GRACE_S,
    ) -> None:
        self.name = backend.name
        self.slots = backend.slots
        self._base = backend.url.rstrip("/")
        self._secret = secret
        self._clock = clock
        self._lost_grace_s = lost_grace_s
        auth = f"Bearer {backend.api_key}" if backend.api_key else ""
        self._http = ProviderHTTP(
            backend.identity(),
            auth=auth,
            secrets=(backend.api_key,),
            client=client,
            timeout=timeout,
        )
        self.live = LiveFeed(self._base, headers={"Authorization": auth} if auth else None)
        self._started: dict[str, float] = {}  # prompt id -> when submitted (or first seen)
        self._missing_since: dict[str, float] = {}  # prompt id -> when first found nowhere

    def run_id(self, req: ProviderRequest) -> str:
        """The prompt id of ``req``'s attempt (:class:`~pixelpipe.providers.base.NamesItsRuns`)."""
        return prompt_id(self.name, RunRef(req.job_id, req.attempt), self._secret)

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        workflow = self._workflow(req)
        files = await upload_inputs(self._http, self._base, self.name, workflow, req)
        self.live.start()
        pid = self.run_id(req)
        body = {
            "prompt": workflow.render(req.request, files),
            "client_id": self.live.client_id,
            "prompt_id": pid,
        }
        self._started[pid] = self._clock()
        try:
            resp = await self._http.send("POST", f"{self._base}/prompt", json=body, allow=(400,))
        except ProviderError as exc:
            if exc.extra.get("ambiguous") and (queued := await self._adopt(pid, req)):
                return queued  # sent, the answer lost, but it was queued: that run is ours
            self._started.pop(pid, None)
            raise
        if resp.status_code == 400:
            self._started.pop(pid, None)
            raise self._refused(resp, workflow)
        return ProviderUpdate(pid, RunState.PENDING, poll_after_s=RUNNING_POLL_S)

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        self.live.start()
        found = await self._look(provider_job_id, req)
        if found is not None:
            self._missing_since.pop(provider_job_id, None)
            return found
        now = self._clock()
        since = self._missing_since.setdefault(provider_job_id, now)
        if now - since < self._lost_grace_s:
            return ProviderUpdate(provider_job_id, RunState.RUNNING, poll_after_s=RUNNING_POLL_S)
        self._forget(provider_job_id)
        raise ProviderJobLost(
            f"{self.name} has prompt {provider_job_id} neither in its queue nor in its history: "
            "ComfyUI was restarted (it keeps both in memory only) and the run is gone",
            provider=self.name,
            transient=True,  # the server is back: the job is retried (a new attempt, a new id)
        )

    async def find_run(self, req: ProviderRequest, since: float) -> ProviderUpdate | None:
        """The prompt of an interrupted submit, if ComfyUI has it (queued, running or ended);
        else None, and the worker submits again with a new attempt (a new prompt id)."""
        return await self._look(self.run_id(req), req)

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        try:
            await self._stop(provider_job_id)
        finally:
            self._forget(provider_job_id)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        raise Unauthorized(f"{self.name} sends no webhooks")

    async def backend_health(self) -> BackendHealth:
        """``/system_stats`` answers → up; READY, or BUSY while ``/queue`` has a running prompt
        (ours or anyone's). Never raises: no answer is DOWN."""
        try:
            await self._http.send("GET", f"{self._base}/system_stats", call_timeout=HEALTH_TIMEOUT)
            running, pending = queue_sizes(await self._get("/queue"))
        except PixelpipeError as exc:
            return BackendHealth(HealthState.DOWN, f"{exc.code}: /system_stats did not answer")
        if running:
            detail = f"running a prompt, {pending} pending"
            return BackendHealth(HealthState.BUSY, detail, busy_slots=running)
        return BackendHealth(HealthState.READY, f"{pending} pending", busy_slots=0)

    async def aclose(self) -> None:
        await self.live.aclose()
        await self._http.aclose()

    # --- looking a prompt up ------------------------------------------------------------------

    async def _look(self, pid: str, req: ProviderRequest) -> ProviderUpdate | None:
        """The prompt's state: ended (history), running or pending (queue); None: nowhere."""
        if (ended := await self._ended(pid, req)) is not None:
            return ended
        running, place = queue_place(await self._get("/queue"), pid)
        if running or place is not None:
            self._started.setdefault(pid, self._clock())
            return self._waiting(pid, running, place)
        return await self._ended(pid, req)  # it may have ended between the two reads

    async def _stop(self, pid: str) -> None:
        for _ in range(2):  # a pending prompt may start between the listing and the delete
            running, place = queue_place(await self._get("/queue"), pid)
            if running:
                await self._http.send("POST", f"{self._base}/interrupt", json={"prompt_id": pid})
                return
            if place is None:
                return  # ended, or never queued: nothing to stop
            await self._http.send("POST", f"{self._base}/queue", json={"delete": [pid]})

    async def _adopt(self, pid: str, req: ProviderRequest) -> ProviderUpdate | None:
        """The prompt of a submit whose answer was lost, if ComfyUI queued it; None when it did
        not, or cannot say (the caller raises the submit's own error)."""
        try:
            return await self._look(pid, req)
        except PixelpipeError:
            return None

    def _waiting(self, pid: str, running: bool, place: int | None) -> ProviderUpdate:
        if running:
            progress = {"state": "running"} | self.live.report(pid)
            return ProviderUpdate(
                pid, RunState.RUNNING, progress=progress, poll_after_s=RUNNING_POLL_S
            )
        progress = {"state": "queued", "queue_position": place}
        return ProviderUpdate(pid, RunState.PENDING, progress=progress, poll_after_s=QUEUED_POLL_S)

    async def _ended(self, pid: str, req: ProviderRequest) -> ProviderUpdate | None:
        entry = (await self._get(f"/history/{pid}")).get(pid)
        if not isinstance(entry, Mapping):
            return None
        workflow = req.workflow
        describe = workflow.describe_node if workflow else _node
        ended = read_history(entry, workflow.output_node if workflow else None, describe)
        seconds, source = self._gpu_time(pid, ended)
        self._forget(pid)
        if ended.succeeded:
            return await self._succeeded(pid, ended, seconds, source)
        if ended.interrupted:
            state, error = RunState.CANCELED, None
        else:
            state, error = RunState.FAILED, self._failure(ended.error)
        return ProviderUpdate(pid, state, error=error, gpu_seconds=seconds, gpu_time_source=source)

    async def _succeeded(
        self, pid: str, ended: Ended, seconds: float | None, source: str | None
    ) -> ProviderUpdate:
        outputs = tuple([await self._view(image) for image in ended.images])
        if not outputs:
            error = ProviderFailed(
                f"{self.name}: prompt {pid} succeeded without an image from the output node",
                provider=self.name,
            )
            return ProviderUpdate(
                pid, RunState.FAILED, error=error, gpu_seconds=seconds, gpu_time_source=source
            )
        return ProviderUpdate(
            pid,
            RunState.SUCCEEDED,
            outputs=outputs,
            progress={"state": "running", "percent": 100},
            usage={"image_count": len(outputs), "images": len(outputs)},
            gpu_seconds=seconds,
            gpu_time_source=source,
        )

    async def _view(self, image: Mapping[str, Any]) -> Output:
        query = urlencode(
            {
                "filename": str(image.get("filename") or ""),
                "subfolder": str(image.get("subfolder") or ""),
                "type": str(image.get("type") or "output"),
            }
        )
        resp = await self._http.send("GET", f"{self._base}/view?{query}", not_found=ProviderFailed)
        kind = resp.headers.get("content-type", "").split(";")[0].strip() or None
        return Output(data=resp.content, content_type=image_type(resp.content) or kind)

    def _gpu_time(self, pid: str, ended: Ended) -> tuple[float | None, str | None]:
        if ended.server_seconds is not None:
            return ended.server_seconds, GPU_TIME_SERVER
        started = self._started.get(pid)
        if started is None:  # submitted by another process (or before a restart): unknown
            return None, None
        return self._clock() - started, GPU_TIME_WALL

    def _failure(self, message: str) -> ProviderError:
        text = self._http.redact(f"{self.name}: {message}")
        if _OUT_OF_MEMORY in message:
            return ProviderUnavailable(text, provider=self.name)
        return ProviderFailed(text, provider=self.name)

    def _forget(self, pid: str) -> None:
        self._started.pop(pid, None)
        self._missing_since.pop(pid, None)
        self.live.forget(pid)

    # --- plumbing -----------------------------------------------------------------------------

    def _workflow(self, req: ProviderRequest) -> Workflow:
        if req.workflow is None:
            raise ProviderInvalidInput(
                f"{self.name} runs ComfyUI workflows only: model {req.request.model!r} has no "
                "workflow in the catalog file (docs/comfyui.md)",
                provider=self.name,
            )
        return req.workflow

    def _refused(self, resp: httpx.Response, workflow: Workflow) -> ProviderInvalidInput:
        try:
            body: Any = resp.json()
        except ValueError:
            body = resp.text[:500]
        message = self._http.redact(refusal_message(body, workflow.describe_node))
        return ProviderInvalidInput(
            f"{self.name} refused the workflow {workflow.source}: {message}", provider=self.name
        )

    async def _get(self, path: str) -> dict[str, Any]:
        resp = await self._http.send("GET", f"{self._base}{path}")
        return self._http.json_object(resp)


def _node(node_id: str) -> str:
    return f"node {node_id}"
