"""OpenAI Images: ``POST /images/generations``, synchronous, so ``submit`` returns the result;
a request with input images is an edit: ``POST /images/edits``, multipart (``edits.py``).

GPT image models always answer base64 (and reject ``response_format``); DALL-E models are asked for
``b64_json`` so that nothing has to be fetched from an expiring URL (a ``url`` answer still works).
There is no job to poll, cancel or hear about by webhook.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from pixelpipe.entropy import random_bytes
from pixelpipe.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderJobLost,
    Unauthorized,
)
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import ProviderRequest, ProviderUpdate, RunState
from pixelpipe.providers.http import ProviderHTTP, ProviderIdentity, body_codes, body_message
from pixelpipe.providers.openai.edits import edit_form
from pixelpipe.providers.outputs import normalize_outputs

IDENTITY = ProviderIdentity("openai", "OPENAI_API_KEY", "PIXELPIPE_OPENAI_BASE_URL")
GENERATION_TIMEOUT = httpx.Timeout(connect=5.0, read=180.0, write=10.0, pool=5.0)
_BILLING_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def is_dalle(model_id: str) -> bool:
    return model_id.startswith("dall-e")


def openai_body(req: CanonicalRequest, model_id: str) -> dict[str, Any]:
    """The JSON body of ``POST /images/generations`` for one canonical request."""
    body: dict[str, Any] = {"model": model_id, "prompt": req.prompt, "n": 1, "size": req.size}
    if is_dalle(model_id):
        body["response_format"] = "b64_json"
        if model_id == "dall-e-3" and req.quality:
            body["quality"] = req.quality
        return body
    body["output_format"] = req.format
    if req.quality:
        body["quality"] = req.quality
    return body


def images_update(job_id: str, data: Mapping[str, Any], model_id: str) -> ProviderUpdate:
    """The answer of ``/images/generations`` as a terminal update."""
    fmt = str(data.get("output_format") or "png")
    items = [i for i in data.get("data") or [] if isinstance(i, dict)]
    outputs = normalize_outputs(items, _CONTENT_TYPES.get(fmt, "image/png"))
    usage = dict(data["usage"]) if isinstance(data.get("usage"), dict) else {}
    usage["images"] = usage["image_count"] = len(outputs)
    revised = next((str(i["revised_prompt"]) for i in items if i.get("revised_prompt")), None)
    state = RunState.SUCCEEDED if outputs else RunState.FAILED
    error = None if outputs else ProviderError(f"openai {model_id} answered no image")
    return ProviderUpdate(
        job_id,
        state,
        outputs=outputs,
        error=error,
        progress={"percent": 100},
        usage=usage,
        revised_prompt=revised,
    )


class OpenAIProvider:
    """OpenAI Images (gpt-image-1, dall-e-3, dall-e-2)."""

    name = "openai"
    supports_webhooks = False

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = GENERATION_TIMEOUT,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = ProviderHTTP(
            IDENTITY, auth=f"Bearer {api_key}", secrets=(api_key,), client=client, timeout=timeout
        )

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        if req.images:  # an edit: multipart, the input images and the mask
            url = f"{self._base}/images/edits"
            form = edit_form(req)
            resp = await self._http.send("POST", url, form=form, allow=range(400, 600))
        else:
            body = openai_body(req.request, req.model_id)
            url = f"{self._base}/images/generations"
            resp = await self._http.send("POST", url, json=body, allow=range(400, 600))
        if resp.status_code >= 400:
            raise self._error(resp)
        job_id = resp.headers.get("x-request-id") or f"oai_{random_bytes(16).hex()}"
        return images_update(job_id, self._http.json_object(resp), req.model_id)

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        raise ProviderJobLost(
            f"openai runs are synchronous: there is nothing to poll for {provider_job_id!r}",
            provider="openai",
        )

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        return None

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        raise Unauthorized("openai sends no image webhooks")

    async def aclose(self) -> None:
        await self._http.aclose()

    def _error(self, resp: httpx.Response) -> ProviderError:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if _BILLING_CODES.intersection(body_codes(body)):
            message = self._http.redact(body_message(body))
            return ProviderAuthError(
                f"openai refused for billing reasons ({message}); check the account behind "
                f"{IDENTITY.key_var}",
                provider="openai",
                variable=IDENTITY.key_var,
            )
        return self._http.error(resp)
