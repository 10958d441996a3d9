"""One AUTOMATIC1111 / Forge / SD.Next server (``/sdapi/v1``) as a provider.

``POST {url}/sdapi/v1/txt2img`` (``img2img`` for an edit: ``img2img.py``) is synchronous, so
``submit`` returns the terminal update: the images (base64 PNGs) as bytes and the parsed
``info`` in ``usage["info"]`` (the worker keeps a successful run's ``usage`` on the job). GPU
time is the wall time of the call (``gpu_time_source="wall"``; it includes time the server spent
on a web UI user's job first).

**One request at a time.** The server runs one generation at a time and makes every other caller
wait, unanswered (its ``queue_lock``); so this provider holds an asyncio lock per backend and never
sends a second txt2img while one is in flight: jobs wait in this process, in order, where their
position can be told. The lock is per process: capacity across processes (several workers) is the
backend's ``slots`` in the operator's catalog, which the worker enforces (``worker/slots.py``).
Two catalog backends with the same URL are two locks.

**Progress**: :meth:`A1111Provider.watch_progress` (``WatchesProgress``) tells a job's place in
that line, then the server's figures and live preview while its call is in flight; the worker runs
it beside the submit and writes what it says as the job's progress events (``worker/progress.py``).

Options (the backend's ``options`` in the catalog): ``checkpoint`` (sent as
``override_settings.sd_model_checkpoint``; A1111 silently runs a fallback for a name it does not
have, so ``info`` is checked and such a run fails with ``ProviderInvalidInput`` naming the fix),
``sampler``, ``scheduler``, ``steps`` and ``cfg_scale`` (defaults when the request has none). Its
``api_key`` is ``user:password`` of the server's ``--api-auth`` (HTTP Basic).

Cancel: ``POST /sdapi/v1/interrupt`` while this job's call is in flight (A1111 stops after the
current step and answers the images so far; they are discarded: the update is CANCELED). The
interrupt stops whatever the server runs: it is sent only while this provider's call is in flight.
Errors: see ``answers.py``; a dropped connection (the server died) is ProviderUnavailable.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import httpx

from pixelpipe.entropy import random_bytes
from pixelpipe.errors import (
    ConfigError,
    PixelpipeError,
    ProviderError,
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    Unauthorized,
)
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.a1111.answers import (
    checkpoint_ran,
    error_from_response,
    parse_info,
)
from pixelpipe.providers.a1111.img2img import img2img_fields
from pixelpipe.providers.a1111.progress import Progress, parse_progress
from pixelpipe.providers.base import (
    BackendHealth,
    HealthState,
    Output,
    ProviderRequest,
    ProviderUpdate,
    RunState,
)
from pixelpipe.providers.http import ProviderHTTP
from pixelpipe.providers.outputs import decode_base64
from pixelpipe.providers.previews import image_type
from pixelpipe.providers.registration import Backend

GENERATION_TIMEOUT = httpx.Timeout(connect=5.0, read=600.0, write=10.0, pool=5.0)
PROGRESS_TIMEOUT = httpx.Timeout(5.0)


def basic_auth(backend: Backend) -> str:
    """``Authorization`` for ``--api-auth user:password`` (empty without a key)."""
    if not backend.api_key:
        return ""
    if ":" not in backend.api_key:
        raise ConfigError(
            f"backend {backend.name}{' (' + backend.source + ')' if backend.source else ''}: an "
            "AUTOMATIC1111 api key is user:password, as given to the server's --api-auth"
        )
    return "Basic " + base64.b64encode(backend.api_key.encode()).decode()


def txt2img_body(req: CanonicalRequest, options: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of ``POST /sdapi/v1/txt2img`` for one canonical request (one image)."""
    body: dict[str, Any] = {
        "prompt": req.prompt,
        "negative_prompt": req.negative_prompt or "",
        "seed": req.seed,
        "width": req.width,
        "height": req.height,
        "batch_size": 1,
        "n_iter": 1,
        "send_images": True,
        "save_images": False,
    }
    extra = {  # the options' values as the catalog gives them: the server validates them
        "steps": req.steps or options.get("steps"),
        "cfg_scale": req.guidance if req.guidance is not None else options.get("cfg_scale"),
        "sampler_name": options.get("sampler"),
        "scheduler": options.get("scheduler"),
    }
    body |= {k: v for k, v in extra.items() if v is not None}
    if options.get("checkpoint"):
        body["override_settings"] = {"sd_model_checkpoint": str(options["checkpoint"])}
    return body


class A1111Provider:
    """One backend of kind ``a1111``; its name is the backend's."""

    supports_webhooks = False

    def __init__(
        self,
        backend: Backend,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = GENERATION_TIMEOUT,
    ) -> None:
        self.name = backend.name
        self._backend = backend
        self._base = backend.url.rstrip("/")
        self._ident = backend.identity("the api key (user:password)")
        self._http = ProviderHTTP(
            self._ident,
            auth=basic_auth(backend),
            secrets=(backend.api_key,),
            client=client,
            timeout=timeout,
        )
        self._slot = asyncio.Lock()  # one txt2img in flight per backend (FIFO)
        self._waiting: list[str] = []  # job ids waiting for the slot, in order
        self._running: str | None = None  # the job whose txt2img is in flight
        self._canceled: set[str] = set()

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        job = req.job_id
        self._waiting.append(job)
        try:
            async with self._slot:
                self._waiting.remove(job)
                if job in self._canceled:
                    return self._canceled_update(0.0)
                self._running = job
                try:
                    return await self._generate(req)
                finally:
                    self._running = None
        finally:
            if job in self._waiting:  # its task was cancelled while it waited
                self._waiting.remove(job)
            self._canceled.discard(job)

    async def progress(self) -> Progress:
        """The server's progress now (global: whatever it runs)."""
        resp = await self._http.send(
            "GET",
            f"{self._base}/sdapi/v1/progress",
            call_timeout=PROGRESS_TIMEOUT,
            allow=range(400, 600),
        )
        if resp.status_code >= 400:
            raise error_from_response(resp, self._ident, self._http.redact)
        return parse_progress(self._http.json_object(resp))

    async def backend_health(self) -> BackendHealth:
        """``GET /sdapi/v1/progress``: answers → READY, or BUSY while it runs a job (ours or a
        web UI user's); no answer or an error → DOWN. Never raises."""
        busy, queued = int(self._running is not None), len(self._waiting)
        try:
            now = await self.progress()
        except PixelpipeError as exc:
            detail = f"{exc.code}: /sdapi/v1/progress"
            return BackendHealth(HealthState.DOWN, detail, busy, queued)
        if now.job or busy:
            return BackendHealth(HealthState.BUSY, "running a job", busy, queued)
        return BackendHealth(HealthState.READY, "", busy, queued)

    async def watch_progress(
        self, job_id: str, interval_s: float = 0.5
    ) -> AsyncGenerator[dict[str, Any], None]:
        """:class:`~pixelpipe.providers.base.WatchesProgress`: :meth:`progress_of` as progress
        dicts (:meth:`Progress.as_progress`: the figures, and the live preview as a ``data:``
        URL while it is small). The worker writes them as the job's progress events."""
        async with aclosing(self.progress_of(job_id, interval_s)) as seen:
            async for now in seen:
                yield now.as_progress()

    async def progress_of(
        self, job_id: str, interval_s: float = 0.5
    ) -> AsyncGenerator[Progress, None]:
        """The progress of job ``job_id`` every ``interval_s`` while it waits for this backend
        (``queued`` with its position) or runs on it (the server's figures and preview); it ends
        once the job's submit is over. Start it beside ``submit`` (it waits for the job to
        arrive: a job whose submit is over before it started is never seen, so its caller
        stops it when ``submit`` returns). A failed progress call is skipped."""
        seen = False
        while True:
            if self._running == job_id:
                seen = True
                try:
                    now = await self.progress()
                except ProviderError:
                    now = None
                if now is not None and now.job and self._running == job_id:
                    yield now  # not while the server is idle (before or after the run)
            elif job_id in self._waiting:
                seen = True
                yield Progress("queued", position=self._waiting.index(job_id) + 1)
            elif seen:
                return
            await asyncio.sleep(interval_s)

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        raise ProviderJobLost(
            f"{self.name} runs are synchronous: there is nothing to poll for {provider_job_id!r}",
            provider=self.name,
        )

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        job = req.job_id
        if job in self._waiting:
            self._canceled.add(job)  # it will not be sent
        elif self._running == job:
            self._canceled.add(job)
            await self._http.send("POST", f"{self._base}/sdapi/v1/interrupt")

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        raise Unauthorized(f"{self.name} sends no webhooks")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _generate(self, req: ProviderRequest) -> ProviderUpdate:
        """``txt2img``, or ``img2img`` when the request has input images (``img2img.py``)."""
        body = txt2img_body(req.request, self._backend.options)
        endpoint = "txt2img"
        if req.images:
            body |= img2img_fields(req, self._backend.options)
            endpoint = "img2img"
        started = time.monotonic()
        resp = await self._http.send(
            "POST", f"{self._base}/sdapi/v1/{endpoint}", json=body, allow=range(400, 600)
        )
        wall = time.monotonic() - started
        if resp.status_code >= 400:
            raise error_from_response(resp, self._ident, self._http.redact)
        data = self._http.json_object(resp)
        if req.job_id in self._canceled:
            return self._canceled_update(wall)
        return self._update(data, wall)

    def _update(self, data: dict[str, Any], wall: float) -> ProviderUpdate:
        info = parse_info(data.get("info"))
        images = [decode_base64(i) for i in data.get("images") or [] if isinstance(i, str)]
        outputs = tuple(Output(data=i, content_type=image_type(i)) for i in images)
        error = self._checkpoint_error(info)
        if error is None and not outputs:
            error = ProviderFailed(f"{self.name} answered no image")
        return ProviderUpdate(
            f"{self.name}_{random_bytes(16).hex()}",
            RunState.FAILED if error else RunState.SUCCEEDED,
            outputs=() if error else outputs,
            error=error,
            progress={"state": "running", "percent": 100},
            usage={"images": len(outputs), "image_count": len(outputs), "info": info},
            gpu_seconds=wall,
            gpu_time_source="wall",
        )

    def _checkpoint_error(self, info: dict[str, Any]) -> ProviderError | None:
        wanted = str(self._backend.options.get("checkpoint") or "")
        if not wanted or checkpoint_ran(wanted, info):
            return None
        ran = f"{info.get('sd_model_name')} [{info.get('sd_model_hash')}]"
        where = f" ({self._backend.source})" if self._backend.source else ""
        return ProviderInvalidInput(
            f"backend {self.name} has no checkpoint {wanted!r}: AUTOMATIC1111 ran its fallback "
            f"{ran} instead, so the image was discarded. Set the backend's checkpoint option"
            f"{where} to a title from GET {self._base}/sdapi/v1/sd-models",
            provider=self.name,
        )

    def _canceled_update(self, wall: float) -> ProviderUpdate:
        return ProviderUpdate(
            f"{self.name}_{random_bytes(16).hex()}",
            RunState.CANCELED,
            gpu_seconds=wall,
            gpu_time_source="wall",
        )
