"""One OpenAI-compatible image server (vLLM-Omni, SGLang diffusion, LocalAI) as a provider.

``POST {url}/v1/images/generations`` (``/v1/images/edits`` for an edit with input images:
``edits.py``) is synchronous, so ``submit`` returns the terminal update;
there is no run to poll, cancel or hear about by webhook. What the servers do (sources in
``pixelpipe/fakes/openai_compatible.py``):

- the body is OpenAI's plus the extension fields ``seed``, ``negative_prompt``,
  ``num_inference_steps``, ``guidance_scale`` (and ``true_cfg_scale`` from the backend's options);
  ``response_format`` is always ``b64_json``: SGLang's default is ``url``, which it refuses
  *after* generating (the GPU time spent for nothing);
- the model sent is the backend's ``model`` option, else the request's ``model_id``. A server runs
  whatever model it was started with and does **not** refuse another name (vLLM-Omni logs a
  mismatch, SGLang ignores the field), so before its first generation the provider checks that
  ``GET /v1/models`` lists that name; a server that serves another model is refused with
  ``ProviderInvalidInput`` naming the fix, like the early vLLM-Omni's own 400 "Model mismatch"
  (a 404 there — no model list — skips the check; it is made again after an outage, since a
  restarted server may run another model);
- errors: SGLang's FastAPI ``{"detail": str | [{loc, msg…}]}`` and plain-text 500s, vLLM's
  ``{"error": {message, type, param, code}}`` (validation as 400), 401 ``{"error":
  "Unauthorized"}``; all go through :mod:`pixelpipe.providers.http`: 429 → ProviderRateLimited,
  5xx/connection/timeout/dropped connection → ProviderUnavailable, 400/422 → ProviderInvalidInput
  with the server's message, 401/403 → ProviderAuthError.

GPU time: SGLang reports ``inference_time_s`` (its own measure: ``gpu_time_source="server"``);
otherwise the wall time of the call (``"wall"``), which includes time queued inside the server.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from pixelpipe.entropy import random_bytes
from pixelpipe.errors import (
    PixelpipeError,
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderUnavailable,
    Unauthorized,
)
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import (
    BackendHealth,
    HealthState,
    ProviderRequest,
    ProviderUpdate,
    RunState,
)
from pixelpipe.providers.http import ProviderHTTP
from pixelpipe.providers.openai_compatible.edits import edit_form
from pixelpipe.providers.outputs import normalize_outputs
from pixelpipe.providers.registration import Backend

GENERATION_TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=10.0, pool=5.0)
HEALTH_TIMEOUT = httpx.Timeout(5.0)
_CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}


def served_model(backend: Backend, req: ProviderRequest) -> str:
    return str(backend.options.get("model") or req.model_id)


def generation_body(
    req: CanonicalRequest, model: str, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON body of ``POST /v1/images/generations`` for one canonical request."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": req.prompt,
        "n": 1,
        "size": req.size,
        "seed": req.seed,
        "response_format": "b64_json",  # never SGLang's default "url" (refused after the run)
    }
    extensions = {
        "negative_prompt": req.negative_prompt,
        "num_inference_steps": req.steps,
        "guidance_scale": req.guidance,
        "true_cfg_scale": options.get("true_cfg_scale"),
    }
    body |= {k: v for k, v in extensions.items() if v is not None}
    return body


class OpenAICompatibleProvider:
    """One backend of kind ``openai_compatible``; its name is the backend's."""

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
        self._base = backend.url.rstrip("/").removesuffix("/v1")
        auth = f"Bearer {backend.api_key}" if backend.api_key else ""
        self._http = ProviderHTTP(
            backend.identity(),
            auth=auth,
            secrets=(backend.api_key,),
            client=client,
            timeout=timeout,
        )
        self._checked: set[str] = set()  # model names GET /v1/models confirmed
        self._in_flight = 0  # generations this process has sent and not had answered (health)

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        model = served_model(self._backend, req)
        self._in_flight += 1
        try:
            await self._check_model(model)
            body = generation_body(req.request, model, self._backend.options)
            started = time.monotonic()
            if req.images:  # an edit (``edits.py``)
                form = edit_form(body, req.images)
                resp = await self._http.send("POST", f"{self._base}/v1/images/edits", form=form)
            else:
                url = f"{self._base}/v1/images/generations"
                resp = await self._http.send("POST", url, json=body)
            wall = time.monotonic() - started
            data = self._http.json_object(resp)
        except ProviderUnavailable:
            self._checked.clear()  # an outage: a restarted server may run another model
            raise
        finally:
            self._in_flight -= 1
        return self._update(data, wall, model)

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        raise ProviderJobLost(
            f"{self.name} runs are synchronous: there is nothing to poll for {provider_job_id!r}",
            provider=self.name,
        )

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        return None  # a synchronous call: nothing to stop once sent

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        raise Unauthorized(f"{self.name} sends no webhooks")

    async def backend_health(self) -> BackendHealth:
        """``GET /health`` (SGLang, vLLM-Omni); where the server has none (404), ``GET
        /v1/models``. 200 → READY (BUSY while this process has a generation in flight there);
        anything else, or no answer → DOWN. Never raises."""
        busy = self._in_flight
        try:
            for path in ("/health", "/v1/models"):
                resp = await self._http.send(
                    "GET", f"{self._base}{path}", call_timeout=HEALTH_TIMEOUT, allow=range(400, 600)
                )
                if resp.status_code != 404:
                    break
        except PixelpipeError as exc:
            return BackendHealth(HealthState.DOWN, f"{exc.code}: {path}", busy_slots=busy)
        if resp.status_code >= 400:
            detail = f"{path} answered {resp.status_code}"
            return BackendHealth(HealthState.DOWN, detail, busy_slots=busy)
        state = HealthState.BUSY if busy else HealthState.READY
        return BackendHealth(state, busy_slots=busy)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _check_model(self, model: str) -> None:
        if model in self._checked:
            return
        resp = await self._http.send("GET", f"{self._base}/v1/models", allow=(404,))
        if resp.status_code == 404:
            return  # no model list: nothing to check against
        data = self._http.json_object(resp)
        served = [str(m.get("id")) for m in data.get("data") or [] if isinstance(m, dict)]
        if model not in served:
            names = ", ".join(served) or "no model"
            raise ProviderInvalidInput(
                f"backend {self.name} ({self._backend.url}) serves {names}, not {model!r}; it "
                "would generate with its own model instead. Set the backend's model option to "
                f"the name it serves{self._where()}, or start the server with {model!r}",
                provider=self.name,
            )
        self._checked.add(model)

    def _where(self) -> str:
        return f" ({self._backend.source})" if self._backend.source else ""

    def _update(self, data: dict[str, Any], wall: float, model: str) -> ProviderUpdate:
        fmt = str(data.get("output_format") or "png").lower()
        items = [i for i in data.get("data") or [] if isinstance(i, dict)]
        outputs = normalize_outputs(items, _CONTENT_TYPES.get(fmt, "image/png"))
        gpu_seconds, source = _gpu_time(data.get("inference_time_s"), wall)
        error = None if outputs else ProviderFailed(f"{self.name} ({model}) answered no image")
        return ProviderUpdate(
            str(data.get("id") or f"{self.name}_{random_bytes(16).hex()}"),
            RunState.SUCCEEDED if outputs else RunState.FAILED,
            outputs=outputs,
            error=error,
            progress={"percent": 100},
            usage={"images": len(outputs), "image_count": len(outputs), "model": model},
            gpu_seconds=gpu_seconds,
            gpu_time_source=source,
        )


def _gpu_time(server_time: Any, wall: float) -> tuple[float, str]:
    """SGLang's own ``inference_time_s`` where it gives one, else the call's wall time."""
    if isinstance(server_time, int | float) and server_time > 0:
        return float(server_time), "server"
    return wall, "wall"
