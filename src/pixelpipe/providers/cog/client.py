"""A cog model server (Replicate's open-source server, coglet) as a provider: one per backend.

Protocol facts are in ``tests/servers/cog.py`` (observed on coglet 0.23.1). How runs go:

- **With a webhook route** (``ProviderRequest.webhook_url``): ``PUT /predictions/{id}`` with
  ``Prefer: respond-async``; cog answers 202 at once and POSTs the ``start``, ``logs`` (the
  predictor's output so far: a tqdm bar in it is the run's progress), ``output`` (what an
  iterator predictor yielded so far: its latest frame is the run's live preview, a thumbnail at
  most every :data:`PREVIEW_EVERY_S`) and ``completed`` events to the webhook URL. One image is
  asked for, so the image is the *last* output (the frames before it were previews). The id
  is the attempt's run tag (``<job>.<attempt>.<hmac>``, :func:`.predictions.prediction_id`):
  the same attempt always PUTs the same id, and a PUT of an id that is still running answers
  that run's snapshot and starts nothing (adopted).
- **Without one** (``PIXELPIPE_PUBLIC_URL`` empty, or the backend's ``webhooks = false``):
  ``POST /predictions`` with the same id, held until the run ends (the backend's
  timeout, default 10 minutes); the answer is terminal. A client that gives up cancels the run.
- **The trap**: cog forgets a prediction when it ends (there is no GET), and a PUT of a finished
  id runs it AGAIN. So only :meth:`CogProvider.submit` PUTs a real input, once per attempt (the
  worker numbers attempts; the number is in the id). Looking a run up (:meth:`~CogProvider.poll`,
  :meth:`~CogProvider.find_run`) PUTs a *probe*: the same id, no webhook, no ``Prefer``, and an
  input that is not an object. coglet answers a running id with its snapshot (202) before it
  looks at the input; for an id it does not run, the probe fails validation and starts nothing:
  422 from the predictor's schema (``.cog/openapi_schema.json``, which ``cog build`` writes), or,
  without a schema, 200 ``failed`` "Input validation error: Input must be a JSON object" in under
  a millisecond (both observed on 0.23.1, and tested).
- **poll** is therefore honest: running → the snapshot's state; not running → the run ended and
  its completion webhook has not reached us. cog retries a completion for minutes, so that is
  first waited for (:data:`GONE_GRACE_S`), then the run is reported lost (ProviderJobLost).
- **Busy**: 409 "At capacity" (every slot taken, or a completion whose slot is not free yet: coglet
  frees a slot just *after* it answers a synchronous run or posts a completion) starts nothing, so
  it is asked again after :data:`BUSY_REASK_S` (the slot of a run that just ended is free by then);
  a 409 that stays is ProviderRateLimited with a short ``retry_after``: the retry policy waits
  for a slot or fails over, and spends no attempt. 5xx and connection errors:
  ProviderUnavailable; 422: ProviderInvalidInput with cog's message.
- **Edits** (input images, a mask, a strength): ``data:`` URIs in the predictor's ``Path``
  inputs, named by the backend's ``options.image_inputs`` and checked against its
  ``/openapi.json`` before the first one (``inputs.py``).
- **Webhooks** are not signed (``WEBHOOK_AUTH_TOKEN`` is one token per server): a delivery is
  authentic when the prediction id in its body carries a valid run tag for this backend.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx

from pixelpipe.errors import (
    PixelpipeError,
    ProviderInvalidInput,
    ProviderRateLimited,
    Unauthorized,
)
from pixelpipe.providers.base import (
    BackendHealth,
    HealthState,
    ProviderRequest,
    ProviderUpdate,
    RunState,
)
from pixelpipe.providers.cog.inputs import OPTION, ImageInputs, schema_problem
from pixelpipe.providers.cog.predictions import (
    cog_input,
    gone,
    prediction_id,
    prediction_update,
)
from pixelpipe.providers.http import DEFAULT_TIMEOUT, ProviderHTTP, ProviderIdentity
from pixelpipe.providers.registration import Backend
from pixelpipe.providers.run_tag import RunRef, parse_run

SYNC_TIMEOUT_S = 600.0  # how long a synchronous prediction may take when the backend sets none
BUSY_RETRY_AFTER_S = 1.0  # a slot frees when a run ends: ask again soon
BUSY_REASK_S = (
    0.05,
    0.15,
    0.3,
)  # a 409 in the instant a run's slot frees: the pauses before asking again
SCHEMA_TTL_S = 60.0  # how long the predictor's /openapi.json is trusted before it is read again
GONE_GRACE_S = 60.0  # how long a finished run's completion webhook is waited for before "lost"
# "logs" (cog sends at most one per 500 ms): a diffusers predictor's tqdm bar is the run's
# progress; "output" (never throttled by cog): each frame an iterator predictor yields, its preview
WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
PREVIEW_EVERY_S = 0.5  # at most two previews a second per run; a frame sooner is left out
HEALTH_STATES = frozenset({"STARTING", "READY", "BUSY", "SETUP_FAILED", "DEFUNCT", "UNHEALTHY"})
_COG_HEALTH = {  # the others (SETUP_FAILED, DEFUNCT, UNHEALTHY, anything new): DOWN
    "READY": HealthState.READY,
    "BUSY": HealthState.BUSY,
    "STARTING": HealthState.STARTING,
}
_ASYNC = {"Prefer": "respond-async"}
_PROBE_INPUT = "pixelpipe: is this prediction running?"  # not an object: no schema accepts it


class CogProvider:
    """One cog server (a backend of the operator's catalog), named after the backend."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: bytes,
        slots: int = 1,
        api_key: str = "",
        inputs: Mapping[str, Any] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        sync_timeout_s: float = SYNC_TIMEOUT_S,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        webhooks: bool = True,
        identity: ProviderIdentity | None = None,
        image_inputs: ImageInputs | None = None,
    ) -> None:
        self.name = name
        # False: no webhook URL is given to it (worker/provider_run.py), so it runs synchronously
        self.supports_webhooks = webhooks
        self.slots = slots
        self._base = url.rstrip("/")
        self._secret = secret
        self._inputs = dict(inputs or {})
        self._sync_timeout_s = sync_timeout_s
        self._clock = clock
        self._gone_since: dict[str, float] = {}  # prediction id -> when a probe first missed it
        self._names = image_inputs or ImageInputs()  # the predictor's inputs for an edit
        self._schema: tuple[float, Any] | None = None  # (when read, /openapi.json or None)
        self._preview_at: dict[str, float] = {}  # prediction id -> when its last preview went
        self._ended_at: dict[str, float] = {}  # prediction id -> when its end came, oldest first
        # who is talking in error messages: the backend and where the catalog defines it
        ident = identity or Backend(name=name, kind="cog", url=url).identity()
        self._http = ProviderHTTP(
            ident,
            auth=f"Bearer {api_key}" if api_key else "",
            secrets=(api_key,),
            client=client,
            timeout=timeout,
        )

    def prediction_id(self, req: ProviderRequest) -> str:
        return prediction_id(self.name, RunRef(req.job_id, req.attempt), self._secret)

    def run_id(self, req: ProviderRequest) -> str:
        """:meth:`prediction_id` (:class:`~pixelpipe.providers.base.NamesItsRuns`)."""
        return self.prediction_id(req)

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        pid = self.prediction_id(req)
        inputs = cog_input(req.request, self._inputs)
        if req.images:  # an edit: its inputs, once the predictor's schema says it takes them
            await self._check_schema(req)
            inputs |= self._names.fields(req)
        body: dict[str, Any] = {"id": pid, "input": inputs}
        if not req.webhook_url:
            return await self._run_sync(body)
        # once per attempt (see the module docstring): a repeat while it runs adopts the run
        body |= {"webhook": req.webhook_url, "webhook_events_filter": list(WEBHOOK_EVENTS)}
        resp = await self._send("PUT", self._prediction_url(pid), json=body, headers=_ASYNC)
        return prediction_update(self.name, self._http.json_object(resp))

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        """The run's state while cog runs it; after it ended, wait for its webhook, then lost."""
        running = await self._probe(provider_job_id)
        if running is not None:
            self._gone_since.pop(provider_job_id, None)
            return running
        now = self._clock()
        self._forget_older_than(now - 2 * GONE_GRACE_S)  # runs whose webhook came meanwhile
        since = self._gone_since.setdefault(provider_job_id, now)
        if now - since < GONE_GRACE_S:
            return ProviderUpdate(provider_job_id, RunState.RUNNING, poll_after_s=5.0)
        del self._gone_since[provider_job_id]
        raise gone(self.name, provider_job_id)

    async def find_run(self, req: ProviderRequest, since: float) -> ProviderUpdate | None:
        """The run of an interrupted submit, if cog is still running it (adopted); else None, and
        the worker goes round again with a new attempt (a new id) rather than re-PUT this one."""
        return await self._probe(self.prediction_id(req))

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        """Stop the run; a 404 (already ended, or never started) is fine."""
        url = self._prediction_url(provider_job_id) + "/cancel"
        await self._send("POST", url, allow=(404,))

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        """Authenticate the delivery by the run tag in its prediction id, then decode it."""
        try:
            pred = json.loads(body)
        except ValueError:
            raise Unauthorized(f"{self.name} webhook body is not JSON") from None
        pid = pred.get("id") if isinstance(pred, dict) else None
        if not isinstance(pid, str) or parse_run(pid, self.name, self._secret) is None:
            raise Unauthorized(f"{self.name} webhook names no prediction of ours")
        try:
            update = prediction_update(self.name, pred)
        except PixelpipeError:
            raise Unauthorized(f"{self.name} webhook body is not a prediction") from None
        return self._rate_limited(update)

    def _rate_limited(self, update: ProviderUpdate) -> ProviderUpdate:
        """``update`` without its preview when the run's last one went out under
        :data:`PREVIEW_EVERY_S` ago (cog sends every frame at once). A run that ended is
        remembered for :data:`GONE_GRACE_S`: cog sends its non-terminal hooks unordered, and one
        that comes after the end keeps its percent (a short run's only ``logs`` hook may be
        that one) but not its preview (the last frame was shown; not twice in a millisecond)."""
        pid = update.provider_job_id
        now = self._clock()
        if update.state.terminal:
            self._preview_at.pop(pid, None)
            self._ended(pid, now)
            return update
        if "preview" not in update.progress:
            return update
        if (
            pid in self._ended_at
            or now - self._preview_at.get(pid, -PREVIEW_EVERY_S) < PREVIEW_EVERY_S
        ):
            progress = {k: v for k, v in update.progress.items() if k != "preview"}
            return replace(update, progress=progress)
        self._preview_at[pid] = now
        return update

    def _ended(self, pid: str, now: float) -> None:
        """Remember that ``pid`` ended at ``now``; forget the ends older than GONE_GRACE_S (the
        dict is in time order: the oldest go from its front)."""
        self._ended_at.pop(pid, None)  # a redelivered end moves to the back
        self._ended_at[pid] = now  # never older than the cutoff: the loop stops at it
        oldest = next(iter(self._ended_at))
        while self._ended_at[oldest] < now - GONE_GRACE_S:
            del self._ended_at[oldest]
            oldest = next(iter(self._ended_at))

    async def health(self) -> str:
        """``/health-check``'s status: STARTING, READY, BUSY, SETUP_FAILED, DEFUNCT, UNHEALTHY
        (:data:`HEALTH_STATES`; another value is returned as it is). Unreachable:
        ProviderUnavailable."""
        resp = await self._send("GET", f"{self._base}/health-check")
        return str(self._http.json_object(resp).get("status") or "UNHEALTHY")

    async def backend_health(self) -> BackendHealth:
        """:meth:`health` as a :class:`BackendHealth` (never raises: unreachable is DOWN)."""
        try:
            status = await self.health()
        except PixelpipeError as exc:
            return BackendHealth(HealthState.DOWN, f"{exc.code}: /health-check did not answer")
        state = _COG_HEALTH.get(status, HealthState.DOWN)
        busy = self.slots if state is HealthState.BUSY else None  # READY: some free, not how many
        return BackendHealth(state, status, busy_slots=busy)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run_sync(self, body: dict[str, Any]) -> ProviderUpdate:
        t = self._http.timeout
        wait = httpx.Timeout(
            connect=t.connect, read=self._sync_timeout_s, write=t.write, pool=t.pool
        )
        started = time.monotonic()
        url = f"{self._base}/predictions"
        resp = await self._send("POST", url, json=body, call_timeout=wait)
        wall_s = time.monotonic() - started
        return prediction_update(self.name, self._http.json_object(resp), wall_s=wall_s)

    async def _check_schema(self, req: ProviderRequest) -> None:
        """Refuse an edit whose inputs the predictor's schema lacks (``inputs.py``)."""
        problem = schema_problem(await self._read_schema(), self._names.used(req))
        if problem is not None:
            raise ProviderInvalidInput(
                f"backend {self.name} cannot take this edit: {problem}. Name the predictor's "
                f'inputs in the backend\'s options: {OPTION} = {{ image = "<input>", mask = '
                '"<input>", strength = "<input>" } (images = "<input>" for a list input)',
                provider=self.name,
            )

    async def _read_schema(self) -> Any:
        """``GET /openapi.json`` (kept :data:`SCHEMA_TTL_S`); None when the server has none."""
        now = self._clock()
        if self._schema is not None and now - self._schema[0] < SCHEMA_TTL_S:
            return self._schema[1]
        resp = await self._send("GET", f"{self._base}/openapi.json", allow=(404, 503))
        schema = self._http.json_object(resp) if resp.status_code == 200 else None
        self._schema = (now, schema)
        return schema

    async def _probe(self, pid: str) -> ProviderUpdate | None:
        """The snapshot of ``pid`` if cog runs it now, else None. Never runs a prediction (see
        the module docstring): only a running id answers 202."""
        body = {"id": pid, "input": _PROBE_INPUT}
        resp = await self._send("PUT", self._prediction_url(pid), json=body, allow=(422,))
        if resp.status_code != 202:  # 422, or 200: the probe's own instant validation failure
            return None
        return prediction_update(self.name, self._http.json_object(resp))

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        call_timeout: httpx.Timeout | None = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        for pause in (*BUSY_REASK_S, None):
            resp = await self._http.send(
                method,
                url,
                json=json,
                headers=headers,
                call_timeout=call_timeout,
                allow=(409, *allow),
            )
            if resp.status_code != 409 or pause is None:  # 409: nothing started, asking is safe
                break
            await asyncio.sleep(pause)
        if resp.status_code == 409:  # "At capacity - all prediction slots busy"
            raise ProviderRateLimited(
                f"{self.name} is busy (all {self.slots} slot(s) taken)",
                retry_after=BUSY_RETRY_AFTER_S,
                provider=self.name,
            )
        return resp

    def _forget_older_than(self, cutoff: float) -> None:
        for pid in [p for p, since in self._gone_since.items() if since < cutoff]:
            del self._gone_since[pid]

    def _prediction_url(self, pid: str) -> str:
        return f"{self._base}/predictions/{quote(pid, safe='')}"
