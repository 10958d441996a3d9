"""Replicate: predictions over its HTTP API, completion by Standard Webhooks or by polling.

Official models (``owner/name``) are created with ``POST /v1/models/{owner}/{name}/predictions``;
version refs (``owner/name:<version>`` or a bare 64-hex version id) with ``POST /v1/predictions``.
Creates are asynchronous: the create call answers at once with the prediction id, which is saved
before the run can finish, and completion comes by webhook or polling. ``Prefer: wait=N`` (sync
mode) would hold the create call for the whole run, and a crash or a timeout during it loses the id
of a run Replicate bills; it is available (``wait_models``) but off by default. Every create that
asks for a webhook names its job and attempt in the webhook URL (:mod:`.run_tag`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from pixelpipe.errors import (
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
from pixelpipe.providers.http import DEFAULT_TIMEOUT, ProviderHTTP, ProviderIdentity
from pixelpipe.providers.http import is_content_policy as _is_policy
from pixelpipe.providers.log_progress import log_progress
from pixelpipe.providers.outputs import normalize_outputs
from pixelpipe.providers.replicate.files import InputFiles, image_ref
from pixelpipe.providers.replicate.kontext import is_kontext, kontext_input
from pixelpipe.providers.signing import SignatureInvalid, verify_standard_webhook

IDENTITY = ProviderIdentity("replicate", "REPLICATE_API_TOKEN", "PIXELPIPE_REPLICATE_BASE_URL")
OUTPUT_QUALITY = 90
FLUX_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "3:4": (896, 1152),
    "4:3": (1152, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
PRO_RATIOS = frozenset(FLUX_SIZES) - {"21:9", "9:21"}
FIND_SKEW_S = 10.0  # clock difference allowed between us and Replicate when looking a run up
FIND_MAX_PAGES = 5  # 500 predictions: a lost run is looked up within a minute of its create
_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
_STATES = {
    "starting": RunState.PENDING,
    "processing": RunState.RUNNING,
    "succeeded": RunState.SUCCEEDED,
    "failed": RunState.FAILED,
    "canceled": RunState.CANCELED,
    "aborted": RunState.FAILED,
}
_CONTENT_TYPES = {"webp": "image/webp", "jpg": "image/jpeg", "png": "image/png"}

# --- request translation -------------------------------------------------------------------------


def is_pro(model_id: str) -> bool:
    return "flux-1.1-pro" in model_id or "flux-pro" in model_id


def output_format(fmt: str) -> str:
    return "jpg" if fmt == "jpeg" else fmt


def replicate_input(
    req: CanonicalRequest,
    model_id: str,
    images: tuple[InputImage, ...] = (),
    uris: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``input`` object for one canonical request on this model (FLUX Kontext: an edit of
    ``images``, ``kontext.py``; FLUX dev: image-to-image from ``images[0]``). ``uris``: the
    input images uploaded to Replicate's Files API, by digest (``files.py``); others go inline."""
    if is_kontext(model_id):
        return kontext_input(req, images, uris)
    if images and not model_id.endswith("/flux-dev"):
        raise ProviderInvalidInput(
            f"replicate {model_id} takes no input image; FLUX dev and Kontext do",
            provider="replicate",
        )
    data: dict[str, Any] = {
        "prompt": req.prompt,
        "seed": req.seed,
        "output_format": output_format(req.format),
    }
    if req.format != "png":
        data["output_quality"] = OUTPUT_QUALITY
    data |= _pro_size(req) if is_pro(model_id) else _flux_params(req)
    if images:  # image-to-image: the output takes the input's aspect ratio
        data["image"] = image_ref(images[0], uris)
        if req.strength is not None:
            data["prompt_strength"] = req.strength
    return data


def _flux_params(req: CanonicalRequest) -> dict[str, Any]:
    ratio, megapixels = flux_geometry(req.width, req.height, req.aspect_ratio)
    data: dict[str, Any] = {"aspect_ratio": ratio, "megapixels": megapixels, "num_outputs": 1}
    if req.steps is not None:
        data["num_inference_steps"] = req.steps
    if req.guidance is not None:
        data["guidance"] = req.guidance
    return data


def flux_geometry(width: int, height: int, ratio: str | None) -> tuple[str, str]:
    """FLUX on Replicate has no width/height: an aspect ratio at 1 or 0.25 megapixels."""
    candidates = [ratio] if ratio in FLUX_SIZES else []
    for name in [*candidates, *FLUX_SIZES]:
        w, h = FLUX_SIZES[name]
        if (w, h) == (width, height):
            return name, "1"
        if (w // 2, h // 2) == (width, height):
            return name, "0.25"
    raise ProviderInvalidInput(
        f"replicate FLUX cannot draw {width}x{height}; use one of its aspect ratios",
        provider="replicate",
    )


def _pro_size(req: CanonicalRequest) -> dict[str, Any]:
    ratio = req.aspect_ratio
    if ratio in PRO_RATIOS and FLUX_SIZES[ratio] == (req.width, req.height):
        return {"aspect_ratio": ratio}
    width, height = _pro_side(req.width), _pro_side(req.height)
    return {"aspect_ratio": "custom", "width": width, "height": height}


def _pro_side(value: int) -> int:
    return min(1440, max(256, round(value / 32) * 32))


def prediction_route(model_id: str) -> tuple[str, dict[str, Any]]:
    """(path, extra body) for creating a prediction on ``model_id``."""
    if _VERSION_ID.match(model_id):
        return "/v1/predictions", {"version": model_id}
    name, sep, version = model_id.partition(":")
    if sep:
        return "/v1/predictions", {"version": version}
    owner, slash, model = name.partition("/")
    if not (owner and slash and model) or "/" in model:
        raise ProviderInvalidInput(f"replicate model id {model_id!r} is not owner/name[:version]")
    return f"/v1/models/{owner}/{model}/predictions", {}


# --- answer translation --------------------------------------------------------------------------


def prediction_update(pred: Mapping[str, Any], delivery_id: str | None = None) -> ProviderUpdate:
    """A Replicate prediction object as a :class:`ProviderUpdate`."""
    pid = str(pred.get("id") or "")
    if not pid:
        raise ProviderUnavailable("replicate answered a prediction without an id")
    state = _STATES.get(str(pred.get("status")), RunState.RUNNING)
    if state is RunState.SUCCEEDED:
        return _succeeded(pid, pred, delivery_id)
    return ProviderUpdate(
        pid,
        state,
        error=_failure(pred) if state is RunState.FAILED else None,
        progress=_progress(pred.get("logs")),
        poll_after_s=1.0 if state is RunState.PENDING else 0.5,
        usage=_usage(pred),
        billable=state not in (RunState.FAILED, RunState.CANCELED) or bool(pred.get("output")),
        delivery_id=delivery_id,
    )


def _succeeded(pid: str, pred: Mapping[str, Any], delivery_id: str | None) -> ProviderUpdate:
    ctype = _CONTENT_TYPES.get(str(_input(pred).get("output_format", "webp")))
    outputs = normalize_outputs(pred.get("output"), ctype)
    if not outputs:
        lost = ProviderJobLost(f"replicate prediction {pid} succeeded but its output is gone")
        return ProviderUpdate(pid, RunState.FAILED, error=lost, delivery_id=delivery_id)
    usage = _usage(pred)
    usage.setdefault("image_count", len(outputs))
    usage["images"] = usage["image_count"]
    return ProviderUpdate(
        pid,
        RunState.SUCCEEDED,
        outputs=outputs,
        progress={"percent": 100},
        usage=usage,
        delivery_id=delivery_id,
    )


def _input(pred: Mapping[str, Any]) -> Mapping[str, Any]:
    value = pred.get("input")
    return value if isinstance(value, dict) else {}


def _failure(pred: Mapping[str, Any]) -> PixelpipeError:
    message = str(pred.get("error") or "the prediction failed without a message")
    if pred.get("status") == "aborted":
        return ProviderUnavailable(f"replicate aborted the prediction: {message}", billable=False)
    if _is_policy(message):
        return ProviderContentRejected(f"replicate: {message}", provider="replicate")
    return ProviderFailed(f"replicate: {message}", provider="replicate")


def _progress(logs: Any) -> dict[str, Any]:
    """``percent`` (and ``step``/``steps``) from the model's ``logs``: its tqdm bar."""
    return log_progress(logs) if isinstance(logs, str) else {}


def _usage(pred: Mapping[str, Any]) -> dict[str, Any]:
    metrics = pred.get("metrics")
    return dict(metrics) if isinstance(metrics, dict) else {}


# --- the provider ------------------------------------------------------------------------------


class ReplicateProvider:
    """Replicate predictions. ``webhook_secret`` empty = fetched once from Replicate and cached."""

    name = "replicate"
    supports_webhooks = True

    def __init__(
        self,
        api_token: str,
        *,
        base_url: str = "https://api.replicate.com",
        webhook_secret: str = "",
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        wait_s: int = 10,
        wait_models: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = ProviderHTTP(
            IDENTITY,
            auth=f"Bearer {api_token}",
            secrets=(api_token, webhook_secret),
            client=client,
            timeout=timeout,
        )
        self._configured_secret = webhook_secret
        self._clock = clock
        self._secret = _SecretCache(self._fetch_secret, clock)
        self._wait_s = max(1, min(60, wait_s))
        self._wait_models = wait_models
        self._files = InputFiles(self._http, self._base)

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        path, body = prediction_route(req.model_id)
        uris = await self._files.uris(req.images)
        body["input"] = replicate_input(req.request, req.model_id, req.images, uris)
        if req.webhook_url:
            body |= {"webhook": req.webhook_url, "webhook_events_filter": ["completed"]}
        headers, timeout = self._wait_headers(req.model_id)
        resp = await self._http.send(
            "POST", self._base + path, json=body, headers=headers, call_timeout=timeout
        )
        return prediction_update(self._http.json_object(resp))

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        resp = await self._http.send(
            "GET", self._prediction_url(provider_job_id), not_found=ProviderJobLost
        )
        return prediction_update(self._http.json_object(resp))

    async def find_run(self, req: ProviderRequest, since: float) -> ProviderUpdate | None:
        """The run a lost create call made for ``req``, if Replicate has one: the oldest
        prediction created since ``since`` (less a clock-skew margin) with this request's exact
        input (and webhook, when one was given — it names the job and attempt)."""
        expected = replicate_input(req.request, req.model_id, req.images)  # images inline
        refs = {k for k, v in expected.items() if isinstance(v, str) and v.startswith("data:")}
        after = datetime.fromtimestamp(since - FIND_SKEW_S, UTC).isoformat()
        url: str | None = f"{self._base}/v1/predictions?created_after={quote(after)}"
        found: dict[str, Any] | None = None
        for _ in range(FIND_MAX_PAGES):
            if url is None:
                break
            page = self._http.json_object(await self._http.send("GET", url))
            for pred in page.get("results") or []:  # newest first: the last match is the oldest
                if isinstance(pred, dict) and _made_for(pred, expected, req.webhook_url, refs):
                    found = pred
            nxt = page.get("next")
            url = nxt if isinstance(nxt, str) and nxt.startswith(self._base) else None
        return prediction_update(found) if found is not None else None

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        url = self._prediction_url(provider_job_id) + "/cancel"
        await self._http.send("POST", url, not_found=ProviderJobLost)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        """Verify the Standard Webhooks signature, then decode the prediction it carries."""
        delivery_id = await self._verify(headers, body)
        try:
            return prediction_update(_decode(body), delivery_id=delivery_id)
        except (ValueError, PixelpipeError):
            raise Unauthorized("replicate webhook body is not a prediction") from None

    async def aclose(self) -> None:
        await self._http.aclose()

    def _prediction_url(self, provider_job_id: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", provider_job_id):
            raise ProviderJobLost(f"{provider_job_id!r} is not a Replicate prediction id")
        return f"{self._base}/v1/predictions/{provider_job_id}"

    def _wait_headers(self, model_id: str) -> tuple[dict[str, str], httpx.Timeout | None]:
        if model_id.partition(":")[0] not in self._wait_models:
            return {}, None
        t = self._http.timeout
        read = self._wait_s + (t.read or 30.0)
        timeout = httpx.Timeout(connect=t.connect, read=read, write=t.write, pool=t.pool)
        return {"Prefer": f"wait={self._wait_s}"}, timeout

    async def _verify(self, headers: Mapping[str, str], body: bytes) -> str:
        secret, fresh = await self._secret.get()
        try:
            return verify_standard_webhook(secret, headers, body, now=self._clock())
        except SignatureInvalid as exc:
            if self._configured_secret or fresh or not self._secret.may_refresh(self._clock()):
                raise Unauthorized(f"replicate webhook rejected: {exc}") from None
        secret, _ = await self._secret.get(refresh=True)
        try:
            return verify_standard_webhook(secret, headers, body, now=self._clock())
        except SignatureInvalid as exc:
            raise Unauthorized(f"replicate webhook rejected: {exc}") from None

    async def _fetch_secret(self) -> str:
        if self._configured_secret:
            return self._configured_secret
        resp = await self._http.send("GET", f"{self._base}/v1/webhooks/default/secret")
        key = self._http.json_object(resp).get("key")
        if not isinstance(key, str) or not key:
            raise ProviderUnavailable("replicate answered a webhook secret without a key")
        return key


def _made_for(
    pred: Mapping[str, Any],
    expected: Mapping[str, Any],
    webhook: str | None,
    refs: Collection[str] = (),
) -> bool:
    """Whether ``pred`` is the run ``expected`` would have made. The input fields naming an
    input image (``refs``) are not compared: Replicate does not keep a data URI, so a listing may
    show it as a URL of its own or not at all, and a file uploaded again after a restart has
    another URL; the rest of the input (prompt, seed, every setting) and the webhook, which names
    the job and attempt, still have to match."""
    listed = pred.get("input")
    if not isinstance(listed, Mapping):
        return False
    inline = set(refs)
    if {k: v for k, v in listed.items() if k not in inline} != {
        k: v for k, v in expected.items() if k not in inline
    }:
        return False
    echoed = pred.get("webhook")
    return not (webhook and isinstance(echoed, str)) or echoed == webhook


def _decode(body: bytes) -> dict[str, Any]:
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data


class _SecretCache:
    """The webhook signing secret, fetched once; refreshed at most once a minute on a mismatch."""

    REFRESH_INTERVAL_S = 60.0

    def __init__(self, fetch: Callable[[], Awaitable[str]], clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._value: str | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    def may_refresh(self, now: float) -> bool:
        return now - self._fetched_at >= self.REFRESH_INTERVAL_S

    async def get(self, *, refresh: bool = False) -> tuple[str, bool]:
        """(secret, fetched just now)."""
        async with self._lock:
            if self._value is not None and not refresh:
                return self._value, False
            self._value = await self._fetch()
            self._fetched_at = self._clock()
            return self._value, True
