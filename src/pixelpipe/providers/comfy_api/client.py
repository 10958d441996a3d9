"""One Comfy API v2 server (Comfy Cloud, or comfy-api-proxy in front of a ComfyUI) as a provider.

Protocol facts: ``tests/servers/comfy_proxy.py`` (comfy-api-proxy 0.1.6, read and tested) and
``shared/reference/self-hosted.md`` (Comfy Cloud's contract). How a run goes:

- **inputs** (image-to-image, inpainting): each input image and the mask are uploaded first as
  assets (``assets.py``: ``POST /api/v2/assets``, deduplicated by the server) and the workflow's
  LoadImage / LoadImageMask inputs hold ``core/ASSET`` references to them.
- **submit**: ``POST /api/v2/jobs {"workflow": <the model's workflow, rendered>, "metadata":
  <key>}`` with ``Idempotency-Key: <key>``, the key being the attempt's run tag
  (:func:`.jobs.run_key`: the same attempt always sends the same key). 201: the job. A resent
  submit (the answer was lost, pixelpipe died mid-call) is recognised: Comfy Cloud replays the
  job (``Idempotency-Replayed: true``); comfy-api-proxy answers 422 ``idempotency_key_reuse``,
  and the job is looked up among ``GET /api/v2/jobs`` (its 100 newest) by its ``metadata``. A key
  used but no job found (the proxy keeps a key when ComfyUI was unreachable) is a lost run: the
  job runs again on a new attempt (a new key). :meth:`ComfyApiProvider.find_run` is this resend,
  so a submit interrupted before its answer was saved resumes on the run it made.
- **poll**: ``GET /api/v2/jobs/{id}`` (:mod:`.jobs` maps the statuses); while the job waits or
  runs, its event stream is read in the background (:mod:`.events`) and its latest progress and
  preview are the update's ``progress``; a running job is polled twice a second.
- **outputs**: the output node's image URL; comfy-api-proxy builds it from the host it was called
  on (the backend's own, which its fetch policy allows). The content hash is not checked: see the
  package docstring.
- **cancel**: ``POST /api/v2/jobs/{id}/cancel`` (idempotent; 404: nothing to cancel).
- **health**: ``GET /api/v2/health`` (comfy-api-proxy: ``{"status": "healthy"}``, without asking
  ComfyUI); a server without it (404) is asked ``GET /api/v2/jobs?limit=1``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from pixelpipe.errors import (
    PixelpipeError,
    ProviderInvalidInput,
    ProviderJobLost,
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
from pixelpipe.providers.comfy_api.assets import upload_assets
from pixelpipe.providers.comfy_api.events import TERMINAL, Watches
from pixelpipe.providers.comfy_api.jobs import (
    INVALID_WORKFLOW,
    KEY_REUSE,
    error_body,
    expired,
    invalid_workflow,
    job_update,
    run_key,
)
from pixelpipe.providers.http import (
    DEFAULT_TIMEOUT,
    ProviderHTTP,
    default_client,
    parse_retry_after,
)
from pixelpipe.providers.registration import Backend
from pixelpipe.providers.run_tag import RunRef

JOBS = "/api/v2/jobs"
LOOKUP_LIMIT = 100  # the most GET /api/v2/jobs answers at once (comfy-api-proxy 0.1.6)
CONFLICT_RETRY_AFTER_S = 1.0  # 409 without a Retry-After (a concurrent retry of one key)
_LIVE = frozenset({"queued", "running", "canceling"})
# comfy-api-proxy 0.1.6 derives a job's status from two reads of ComfyUI, /history then /queue:
# a prompt that finishes between them is in neither, and reads "expired" once. So "expired" is
# believed only when it is still the answer this long after it was first seen (seen under load
# in CI: without it, a run that ended well ran a second, billed time).
EXPIRED_GRACE_S = 3.0


class ComfyApiProvider:
    """One backend of kind ``comfy_api``; its name is the backend's."""

    supports_webhooks = False  # v2 has no webhooks yet: jobs are polled

    def __init__(
        self,
        backend: Backend,
        *,
        secret: bytes,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.name = backend.name
        self.slots = backend.slots
        self._base = backend.url.rstrip("/")
        self._secret = secret
        auth = f"Bearer {backend.api_key}" if backend.api_key else ""
        client = client or default_client()
        self._http = ProviderHTTP(
            backend.identity(),
            auth=auth,
            secrets=(backend.api_key,),
            client=client,
            timeout=timeout,
        )
        self._watches = Watches(client, lambda job_id: self._job_url(job_id) + "/events", auth)
        self._expired_since: dict[str, float] = {}  # job id -> when "expired" was first read

    def run_key(self, req: ProviderRequest) -> str:
        """The attempt's ``Idempotency-Key`` (and the job's ``metadata``)."""
        return run_key(self.name, RunRef(req.job_id, req.attempt), self._secret)

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        key = self.run_key(req)
        body = {"workflow": await self._graph(req), "metadata": key}
        resp = await self._http.send(
            "POST",
            self._base + JOBS,
            json=body,
            headers={"Idempotency-Key": key},
            allow=(409, 422),
        )
        if resp.status_code == 409:  # Cloud: the same key is being answered right now
            wait = parse_retry_after(resp.headers) or CONFLICT_RETRY_AFTER_S
            raise ProviderRateLimited(
                f"{self.name}: a submit with this Idempotency-Key is in flight",
                retry_after=wait,
                provider=self.name,
            )
        if resp.status_code == 422:
            return await self._refused(resp, req, key)
        # 201, or Cloud's replay of the same key (``Idempotency-Replayed: true``): the same job
        return job_update(self.name, self._http.json_object(resp), req.workflow)

    async def find_run(self, req: ProviderRequest, since: float) -> ProviderUpdate | None:
        """A submit interrupted before its answer was saved: sent again with the same key, it
        finds the job it made (see the module docstring), or makes it if it never arrived."""
        return await self.submit(req)

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        resp = await self._http.send("GET", self._job_url(provider_job_id), allow=(404,))
        if resp.status_code == 404:
            self._watches.forget(provider_job_id)
            raise self._unknown(provider_job_id)
        job = self._http.json_object(resp)
        status = str(job.get("status") or "")
        if status == "expired" and not self._expired_for_sure(provider_job_id):
            return ProviderUpdate(provider_job_id, RunState.RUNNING, poll_after_s=0.5)
        self._expired_since.pop(provider_job_id, None)
        live = self._watches.progress(provider_job_id) if status in _LIVE else None
        if status in TERMINAL:
            self._watches.forget(provider_job_id)
        return job_update(self.name, job, req.workflow, live)

    def _expired_for_sure(self, job_id: str) -> bool:
        """Still "expired" :data:`EXPIRED_GRACE_S` after it was first read (see there)."""
        now = time.monotonic()
        for old in [j for j, t in self._expired_since.items() if now - t > 10 * EXPIRED_GRACE_S]:
            del self._expired_since[old]  # jobs that came back, or whose step moved on
        return now - self._expired_since.setdefault(job_id, now) >= EXPIRED_GRACE_S

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        """Idempotent; a 404 (a job the server does not know) is fine."""
        self._watches.forget(provider_job_id)
        await self._http.send("POST", self._job_url(provider_job_id) + "/cancel", allow=(404,))

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        raise Unauthorized(f"{self.name}: Comfy API v2 sends no webhooks")

    async def backend_health(self) -> BackendHealth:
        """``GET /api/v2/health`` (never raises: unreachable is DOWN)."""
        try:
            resp = await self._http.send("GET", self._base + "/api/v2/health", allow=(404,))
            if resp.status_code == 404:  # no health route: any answer of the jobs API will do
                await self._http.send("GET", f"{self._base}{JOBS}?limit=1")
                return BackendHealth(HealthState.READY, "answers")
            status = str(self._http.json_object(resp).get("status") or "")
        except PixelpipeError as exc:
            return BackendHealth(HealthState.DOWN, f"{exc.code}: /api/v2/health did not answer")
        state = HealthState.READY if status in ("healthy", "ok") else HealthState.DOWN
        return BackendHealth(state, status or "no status")

    async def aclose(self) -> None:
        await self._watches.aclose()
        await self._http.aclose()

    async def _refused(
        self, resp: httpx.Response, req: ProviderRequest, key: str
    ) -> ProviderUpdate:
        err = error_body(_json(resp))
        if err.get("code") == KEY_REUSE:
            found = await self._find(key, req)
            if found is None:
                raise ProviderJobLost(
                    f"{self.name} has used Idempotency-Key {key} but lists no job for it (its "
                    "first submit never reached ComfyUI, or the job is gone); it runs again",
                    provider=self.name,
                    transient=True,
                )
            return found
        if err.get("code") == INVALID_WORKFLOW:
            raise invalid_workflow(self.name, err, req.workflow)
        raise self._http.error(resp)

    async def _find(self, key: str, req: ProviderRequest) -> ProviderUpdate | None:
        """The job this key made, by its ``metadata``, among the server's newest jobs."""
        url = f"{self._base}{JOBS}?limit={LOOKUP_LIMIT}"
        listed = self._http.json_object(await self._http.send("GET", url)).get("jobs")
        for job in listed if isinstance(listed, list) else ():
            if isinstance(job, dict) and job.get("metadata") == key:
                if job.get("status") == "expired":
                    raise expired(self.name, str(job.get("id")))
                return job_update(self.name, job, req.workflow)
        return None

    async def _graph(self, req: ProviderRequest) -> dict[str, Any]:
        if req.workflow is None:
            raise ProviderInvalidInput(
                f"{self.name} runs ComfyUI workflows, and model {req.request.model} has none: "
                "give the model a workflow in the catalog file (docs/comfyui.md)",
                provider=self.name,
            )
        files = await upload_assets(self._http, self._base, self.name, req.workflow, req)
        return dict(req.workflow.render(req.request, files))

    def _unknown(self, job_id: str) -> ProviderJobLost:
        return ProviderJobLost(
            f"{self.name} does not know job {job_id} (a comfy-api-proxy restarted without "
            "--state-dir forgets its jobs); it runs again",
            provider=self.name,
            transient=True,
        )

    def _job_url(self, job_id: str) -> str:
        return f"{self._base}{JOBS}/{quote(job_id, safe='')}"


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None
