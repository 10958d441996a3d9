"""fal: the queue API (submit, status, result, cancel) and Ed25519-signed webhooks.

Submit goes to the full model id (``fal-ai/flux/schnell``); status, result and cancel use only
``owner/app`` (``fal-ai/flux``): the queue drops the model subpath. Failed and cancelled requests
also end as ``COMPLETED``; the result (or ``error``/``error_type``) says how.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pixelpipe.errors import (
    OutputModerated,
    PixelpipeError,
    ProviderContentRejected,
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderUnavailable,
    Unauthorized,
)
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage, ProviderRequest, ProviderUpdate, RunState
from pixelpipe.providers.fal.kontext import is_kontext, kontext_input, kontext_path
from pixelpipe.providers.http import (
    DEFAULT_TIMEOUT,
    ProviderHTTP,
    ProviderIdentity,
    body_codes,
    body_message,
    is_content_policy,
)
from pixelpipe.providers.log_progress import log_progress
from pixelpipe.providers.outputs import normalize_outputs
from pixelpipe.providers.signing import (
    FalDelivery,
    SignatureInvalid,
    fal_headers,
    fal_verifies,
    jwks_keys,
)

IDENTITY = ProviderIdentity("fal", "FAL_KEY", "PIXELPIPE_FAL_QUEUE_URL")
PRESETS: dict[tuple[int, int], str] = {
    (1024, 1024): "square_hd",
    (512, 512): "square",
    (768, 1024): "portrait_4_3",
    (576, 1024): "portrait_16_9",
    (1024, 768): "landscape_4_3",
    (1024, 576): "landscape_16_9",
}
NAMESPACES = frozenset({"workflows", "comfy"})
IMAGE_TO_IMAGE = "image-to-image"  # FLUX dev's endpoint for a request with an input image
TRANSIENT_ERROR_TYPES = frozenset(
    {
        "request_timeout",
        "startup_timeout",
        "runner_scheduling_failure",
        "runner_connection_timeout",
        "runner_disconnected",
        "runner_connection_refused",
        "internal_error",
    }
)
_STATES = {"IN_QUEUE": RunState.PENDING, "IN_PROGRESS": RunState.RUNNING}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

# --- request translation -------------------------------------------------------------------------


def is_pro(model_id: str) -> bool:
    return "flux-pro" in model_id


def image_size(width: int, height: int) -> str | dict[str, int]:
    """A fal preset name when one matches exactly, else ``{"width", "height"}``."""
    return PRESETS.get((width, height)) or {"width": width, "height": height}


def fal_format(fmt: str) -> str:
    """fal draws jpeg or png only: webp is asked as png (lossless) and transcoded later."""
    return "jpeg" if fmt == "jpeg" else "png"


def fal_input(
    req: CanonicalRequest, model_id: str, images: tuple[InputImage, ...] = ()
) -> dict[str, Any]:
    """The input of one canonical request on this model (FLUX Kontext: ``kontext.py``; with
    ``images``, FLUX dev's ``/image-to-image`` endpoint: :func:`submit_path`)."""
    if is_kontext(model_id):
        return kontext_input(req, images)
    if images:
        return _image_to_image_input(req, images[0])
    data: dict[str, Any] = {
        "prompt": req.prompt,
        "image_size": image_size(req.width, req.height),
        "num_images": 1,
        "seed": req.seed,
        "output_format": fal_format(req.format),
    }
    if is_pro(model_id):
        return data | {"safety_tolerance": "2"}
    data["enable_safety_checker"] = True
    if req.steps is not None:
        data["num_inference_steps"] = req.steps
    if req.guidance is not None:
        data["guidance_scale"] = req.guidance
    return data


def _image_to_image_input(req: CanonicalRequest, image: InputImage) -> dict[str, Any]:
    """FLUX dev image-to-image: no ``image_size`` (the output follows the input image)."""
    data: dict[str, Any] = {
        "prompt": req.prompt,
        "image_url": image.data_uri(),
        "num_images": 1,
        "seed": req.seed,
        "output_format": fal_format(req.format),
        "enable_safety_checker": True,
    }
    if req.strength is not None:
        data["strength"] = req.strength
    if req.steps is not None:
        data["num_inference_steps"] = req.steps
    if req.guidance is not None:
        data["guidance_scale"] = req.guidance
    return data


def submit_path(model_id: str, images: tuple[InputImage, ...]) -> str:
    """The endpoint a request goes to: Kontext's own (``kontext.py``); with an input image,
    FLUX dev's ``<model>/image-to-image``; else the model's own path."""
    if is_kontext(model_id):
        return kontext_path(model_id, images)
    path = "/".join(p for p in model_id.split("/") if p)
    if not images:
        return path
    if path != "fal-ai/flux/dev":
        raise ProviderInvalidInput(
            f"fal {model_id} takes no input image; FLUX dev and Kontext do", provider="fal"
        )
    return f"{path}/{IMAGE_TO_IMAGE}"


def app_path(model_id: str) -> str:
    """``owner/app`` of a model id (namespaced ids keep their namespace prefix)."""
    parts = [p for p in model_id.split("/") if p]
    n = 3 if parts and parts[0] in NAMESPACES else 2
    if len(parts) < n:
        raise ProviderInvalidInput(f"fal model id {model_id!r} is not owner/app[/path]")
    return "/".join(parts[:n])


# --- answer translation --------------------------------------------------------------------------


def result_update(request_id: str, result: Mapping[str, Any], **kw: Any) -> ProviderUpdate:
    """A model result (``images``, ``has_nsfw_concepts``, ``timings``…) as a terminal update."""
    images = result.get("images")
    outputs = normalize_outputs(images if isinstance(images, list) else None)
    usage = _usage(result)
    if outputs and _all_nsfw(result.get("has_nsfw_concepts"), len(outputs)):
        error: PixelpipeError = OutputModerated(  # fal ran (and bills) it: paid and blocked
            "fal: every image was flagged as NSFW (has_nsfw_concepts) and blacked out",
            provider="fal",
            categories=["sexual"],
            source="provider",
        )
        return ProviderUpdate(request_id, RunState.FAILED, error=error, usage=usage, **kw)
    if not outputs:
        error = ProviderFailed("fal: the result holds no images", provider="fal")
        return ProviderUpdate(request_id, RunState.FAILED, error=error, usage=usage, **kw)
    done = {"percent": 100}
    return ProviderUpdate(
        request_id, RunState.SUCCEEDED, outputs=outputs, progress=done, usage=usage, **kw
    )


def _all_nsfw(flags: Any, count: int) -> bool:
    return isinstance(flags, list) and len(flags) >= count and all(flags[:count])


def _usage(result: Mapping[str, Any]) -> dict[str, Any]:
    """Image count and the first image's size (fal bills the produced megapixels)."""
    images = [i for i in result.get("images") or [] if isinstance(i, dict)]
    usage: dict[str, Any] = {"images": len(images), "image_count": len(images)}
    if images and images[0].get("width") and images[0].get("height"):
        usage |= {"width": int(images[0]["width"]), "height": int(images[0]["height"])}
    if isinstance(result.get("timings"), dict):
        usage["timings"] = result["timings"]
    return usage


def model_error(status: int, body: Any, error: str = "") -> PixelpipeError:
    """The error of a failed run, from the model's answer (status code and body)."""
    message = body_message(body) or error or f"HTTP {status}"
    if is_content_policy(message, error, *body_codes(body)):
        return ProviderContentRejected(f"fal: {message}", provider="fal")
    if status >= 500 or status == 429:
        return ProviderUnavailable(f"fal: {message}", provider="fal", billable=False)
    if status in (400, 422):
        return ProviderInvalidInput(f"fal: {message}", provider="fal")
    return ProviderFailed(f"fal: {message}", provider="fal")


def completed_error(status: Mapping[str, Any]) -> PixelpipeError | None:
    """The error of a ``COMPLETED`` status that did not succeed, or None."""
    error, kind = str(status.get("error") or ""), str(status.get("error_type") or "")
    if not (error or kind):
        return None
    if kind in TRANSIENT_ERROR_TYPES:
        return ProviderUnavailable(f"fal: {error or kind}", provider="fal", billable=False)
    return model_error(0, None, f"{error} ({kind})" if kind else error)


def _progress(status: Mapping[str, Any]) -> dict[str, Any]:
    progress: dict[str, Any] = {}
    if isinstance(status.get("queue_position"), int):
        progress["queue_position"] = status["queue_position"]
    logs = status.get("logs")
    if isinstance(logs, list) and logs:
        messages = [str(e.get("message", "")) for e in logs if isinstance(e, dict)]
        progress["logs"] = messages[-5:]
        # the app's own prints (a tqdm bar, "step 8/20", "40%"): how far it is
        progress |= log_progress("\n".join(messages))
    return progress


def _cancelled(status: Mapping[str, Any]) -> bool:
    text = f"{status.get('error') or ''} {status.get('error_type') or ''}".lower()
    return "cancel" in text


# --- the provider ------------------------------------------------------------------------------


class FalProvider:
    """fal's queue. Webhooks are verified against the JWKS at ``jwks_url`` (cached ≤ 24 h)."""

    name = "fal"
    supports_webhooks = True

    def __init__(
        self,
        key: str,
        *,
        queue_url: str = "https://queue.fal.run",
        jwks_url: str = "https://rest.fal.ai/.well-known/jwks.json",
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        jwks_ttl_s: float = 24 * 3600,
        jwks_refetch_interval_s: float = 60.0,
    ) -> None:
        self._queue = queue_url.rstrip("/")
        self._http = ProviderHTTP(
            IDENTITY, auth=f"Key {key}", secrets=(key,), client=client, timeout=timeout
        )
        self._clock = clock
        self._jwks = _JwksCache(
            self._fetch_jwks, clock, ttl_s=jwks_ttl_s, refetch_s=jwks_refetch_interval_s
        )
        self._jwks_url = jwks_url

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        url = f"{self._queue}/{submit_path(req.model_id, req.images)}"
        if req.webhook_url:
            url += "?fal_webhook=" + quote(req.webhook_url, safe="")
        body = fal_input(req.request, req.model_id, req.images)
        data = self._http.json_object(await self._http.send("POST", url, json=body))
        request_id = str(data.get("request_id") or "")
        if not request_id:
            raise ProviderUnavailable("fal answered a submit without request_id", provider="fal")
        return self._queued(request_id, data)

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        base = self._request_url(provider_job_id, req.model_id)
        resp = await self._http.send("GET", base + "/status?logs=1", not_found=ProviderJobLost)
        status = self._http.json_object(resp)
        if status.get("status") != "COMPLETED":
            return self._queued(provider_job_id, status)
        if _cancelled(status):
            return ProviderUpdate(provider_job_id, RunState.CANCELED, billable=False)
        error = completed_error(status)
        if error is not None:
            return _failed(provider_job_id, error)
        return await self._result(provider_job_id, base)

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        url = self._request_url(provider_job_id, req.model_id) + "/cancel"
        await self._http.send("PUT", url, not_found=ProviderJobLost, allow=(400,))

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        """Verify the Ed25519 signature, then decode ``{request_id, status, payload, error}``."""
        delivery = await self._verify(headers, body)
        try:
            data = json.loads(body)
            update = self._webhook_update(data, f"{delivery.request_id}:{delivery.timestamp}")
        except (ValueError, TypeError, AttributeError, PixelpipeError):
            raise Unauthorized("fal webhook body is not a queue result") from None
        if update.provider_job_id != delivery.request_id:
            raise Unauthorized("fal webhook request id does not match its signature")
        return update

    async def aclose(self) -> None:
        await self._http.aclose()

    def _request_url(self, request_id: str, model_id: str) -> str:
        if not _REQUEST_ID.match(request_id):
            raise ProviderJobLost(f"{request_id!r} is not a fal request id")
        return f"{self._queue}/{app_path(model_id)}/requests/{request_id}"

    def _queued(self, request_id: str, status: Mapping[str, Any]) -> ProviderUpdate:
        state = _STATES.get(str(status.get("status")), RunState.RUNNING)
        hint = 1.0 if state is RunState.PENDING else 0.5
        return ProviderUpdate(request_id, state, progress=_progress(status), poll_after_s=hint)

    async def _result(self, request_id: str, base: str) -> ProviderUpdate:
        resp = await self._http.send("GET", base, not_found=ProviderJobLost, allow=(400, 422))
        if resp.status_code >= 400:
            body = _json_or_none(resp)
            return _failed(request_id, model_error(resp.status_code, body))
        return result_update(request_id, self._http.json_object(resp))

    def _webhook_update(self, data: Any, delivery_id: str) -> ProviderUpdate:
        request_id = str(data["request_id"])
        payload = data.get("payload")
        if data.get("status") == "OK" and isinstance(payload, dict):
            return result_update(request_id, payload, delivery_id=delivery_id)
        error = str(data.get("error") or data.get("payload_error") or "")
        if "cancel" in error.lower():
            return ProviderUpdate(
                request_id, RunState.CANCELED, billable=False, delivery_id=delivery_id
            )
        code = int(m.group(1)) if (m := re.search(r"\b([45]\d\d)\b", error)) else 0
        failed = model_error(code, payload, error)
        return _failed(request_id, failed, delivery_id=delivery_id)

    async def _verify(self, headers: Mapping[str, str], body: bytes) -> FalDelivery:
        try:
            delivery = fal_headers(headers, now=self._clock())
        except SignatureInvalid as exc:
            raise Unauthorized(f"fal webhook rejected: {exc}") from None
        keys = await self._jwks.get()
        if not fal_verifies(keys, delivery, body) and not (
            self._jwks.may_refetch() and fal_verifies(await self._jwks.get(True), delivery, body)
        ):
            raise Unauthorized("fal webhook rejected: no JWKS key verifies the signature")
        return delivery

    async def _fetch_jwks(self) -> list[Ed25519PublicKey]:
        resp = await self._http.send("GET", self._jwks_url)
        try:
            return jwks_keys(self._http.json_object(resp))
        except SignatureInvalid as exc:
            raise ProviderUnavailable(f"fal JWKS unusable: {exc}", provider="fal") from None


def _failed(request_id: str, error: PixelpipeError, **kw: Any) -> ProviderUpdate:
    billable = not isinstance(error, ProviderUnavailable | ProviderInvalidInput)
    return ProviderUpdate(request_id, RunState.FAILED, error=error, billable=billable, **kw)


def _json_or_none(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


class _JwksCache:
    """fal's public keys: cached for ``ttl_s``; refetched early at most every ``refetch_s``."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[Ed25519PublicKey]]],
        clock: Callable[[], float],
        *,
        ttl_s: float,
        refetch_s: float,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl_s = ttl_s
        self._refetch_s = refetch_s
        self._keys: list[Ed25519PublicKey] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    def may_refetch(self) -> bool:
        return self._clock() - self._fetched_at >= self._refetch_s

    async def get(self, refresh: bool = False) -> list[Ed25519PublicKey]:
        async with self._lock:
            stale = self._clock() - self._fetched_at > self._ttl_s
            if self._keys is None or stale or refresh:
                self._keys = list(await self._fetch())
                self._fetched_at = self._clock()
            return self._keys
