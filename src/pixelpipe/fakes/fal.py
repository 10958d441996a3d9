"""A protocol-faithful fake of fal's queue API (providers.md §2 and the §5 checklist).

Queue base URL: ``http://HOST:PORT``; JWKS at ``/.well-known/jwks.json``. Submit goes to the full
model id; status, result and cancel URLs drop the model subpath. Status answers 202 while
``IN_QUEUE``/``IN_PROGRESS`` and 200 when ``COMPLETED`` (failures complete too: the result carries
the model's error, e.g. 422 ``{"detail": [...]}``). Webhooks are signed with Ed25519 (hex
signature in ``X-Fal-Webhook-*`` headers) and retried on errors, 4xx and 5xx.

Extra control actions: ``{"rotate_key": true}`` (new signing key; the JWKS lists new and old) and
``{"sign_with_unknown_key": true|false}`` (sign with a key the JWKS does not list). With
``out_of_order_webhooks`` the webhook races ahead of the status endpoint (sent before the status
turns ``COMPLETED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixelpipe.fakes import fal_schema as schema
from pixelpipe.fakes.common import CONTENT_TYPES, Behaviour, FakeServer, base_url, outcome_for
from pixelpipe.fakes.render import render
from pixelpipe.providers.signing import fal_sign, public_jwk

USER_ID = "fake-user"
POLICY_MSG = (
    "The content could not be processed because it contained material flagged by a content checker."
)


@dataclass
class FalRequest:
    id: str
    app: str
    model: str
    input: dict[str, Any]
    created: float
    latency: float
    outcome: str  # ok | nsfw | policy | invalid
    base: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    webhook: str | None = None
    canceled_at: float | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    result: dict[str, Any] | None = None

    @property
    def finished(self) -> float:
        return self.created + self.latency

    def phase(self, now: float) -> str:
        if self.canceled_at is not None or now >= self.finished:
            return "COMPLETED"
        return "IN_PROGRESS" if now >= self.created + self.latency * 0.25 else "IN_QUEUE"

    def urls(self) -> dict[str, str]:
        url = f"{self.base}/{self.app}/requests/{self.id}"
        return {"response_url": url, "status_url": f"{url}/status", "cancel_url": f"{url}/cancel"}


class FakeFal(FakeServer):
    """The fake. ``key=None`` accepts any ``Key …`` credential; ``app`` is the ASGI application."""

    def __init__(
        self,
        *,
        key: str | None = None,
        behaviour: Behaviour | None = None,
        public_url: str | None = None,
    ) -> None:
        super().__init__(behaviour, public_url)
        self.key = key
        self.signing_keys = [Ed25519PrivateKey.generate()]
        self.sign_with_unknown_key = False
        self.requests: dict[str, FalRequest] = {}
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)

    def rotate_key(self) -> None:
        self.signing_keys = [Ed25519PrivateKey.generate(), self.signing_keys[0]]

    def _routes(self) -> list[Route]:
        rq = "/{owner}/{app}/requests/{rid}"
        return [
            *self.core.control_routes(self._control),
            Route("/.well-known/jwks.json", self.jwks, methods=["GET"]),
            Route(rq + "/status", self.status, methods=["GET"]),
            Route(rq + "/cancel", self.cancel, methods=["PUT"]),
            Route(rq, self.result, methods=["GET"]),
            Route("/{model:path}", self.submit, methods=["POST"]),
        ]

    def _control(self, changes: dict[str, Any]) -> None:
        if changes.pop("rotate_key", False):
            self.rotate_key()
        if "sign_with_unknown_key" in changes:
            self.sign_with_unknown_key = bool(changes.pop("sign_with_unknown_key"))

    # --- endpoints -------------------------------------------------------------------------

    async def jwks(self, request: Request) -> Response:
        keys = [public_jwk(k.public_key(), f"fake-{i}") for i, k in enumerate(self.signing_keys)]
        return JSONResponse({"keys": keys})

    async def submit(self, request: Request) -> Response:
        model = request.path_params["model"].strip("/")
        if (denied := await self._gate(request, "submit")) is not None:
            return denied
        if model not in schema.SCHEMAS:
            return JSONResponse({"detail": f"Application '{model}' not found"}, status_code=404)
        try:
            data = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return JSONResponse({"detail": "Request body must be a JSON object"}, status_code=422)
        req = self._new(request, model, data)
        body = {"status": "IN_QUEUE", "request_id": req.id, "gateway_request_id": req.id}
        if self.behaviour.create_answer_delay_s > 0:
            await asyncio.sleep(self.behaviour.create_answer_delay_s)
        return JSONResponse({**body, **req.urls(), "queue_position": 0}, headers=_rid(req))

    async def status(self, request: Request) -> Response:
        req, denied = await self._lookup(request, "status")
        if req is None:
            return denied or JSONResponse({"detail": "Request not found"}, status_code=404)
        with_logs = request.query_params.get("logs", "0").lower() in ("1", "true")
        body = self._status_body(req, time.time(), with_logs)
        code = 200 if body["status"] == "COMPLETED" else 202
        return JSONResponse(body, status_code=code, headers=_rid(req))

    async def result(self, request: Request) -> Response:
        req, denied = await self._lookup(request, "result")
        if req is None:
            return denied or JSONResponse({"detail": "Request not found"}, status_code=404)
        if req.phase(time.time()) != "COMPLETED":
            return JSONResponse({"detail": "Request is still in progress"}, status_code=400)
        if req.canceled_at is not None:
            return JSONResponse({"detail": "Request was cancelled"}, status_code=400)
        code, body = await self._outcome(req)
        return JSONResponse(body, status_code=code, headers=_rid(req))

    async def cancel(self, request: Request) -> Response:
        req, denied = await self._lookup(request, "cancel")
        if req is None:
            return denied or JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        if req.phase(time.time()) == "COMPLETED":
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        req.canceled_at = time.time()
        req.cancel.set()
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    # --- runs ------------------------------------------------------------------------------

    def _new(self, request: Request, model: str, data: dict[str, Any]) -> FalRequest:
        errors = schema.validate(model, data)
        outcome = "invalid" if errors else outcome_for(str(data.get("prompt", "")), self.behaviour)
        req = FalRequest(
            id=str(uuid.uuid4()),
            app="/".join(model.split("/")[:2]),
            model=model,
            input=data,
            created=time.time(),
            latency=self.behaviour.latency_s,
            outcome=outcome,
            base=base_url(request, self.core.public_url),
            errors=errors,
            webhook=request.query_params.get("fal_webhook"),
        )
        self.requests[req.id] = req
        self.core.stats.creates[model] += 1
        if req.webhook:
            self.core.background.spawn(self._send_webhook(req))
        return req

    def _status_body(self, req: FalRequest, now: float, with_logs: bool) -> dict[str, Any]:
        phase = req.phase(now)
        body: dict[str, Any] = {"status": phase, "request_id": req.id, **req.urls()}
        if phase == "IN_QUEUE":
            return body | {"queue_position": 0}
        body["logs"] = _logs(req, now) if with_logs else None
        if phase == "COMPLETED":
            body["metrics"] = {"inference_time": round(req.latency * 0.75, 3)}
            if req.canceled_at is not None:
                body |= {"error": "Request was cancelled", "error_type": "request_cancelled"}
        return body

    async def _outcome(self, req: FalRequest) -> tuple[int, dict[str, Any]]:
        if req.outcome == "invalid":
            return 422, {"detail": req.errors}
        if req.outcome == "policy":
            item = {
                "loc": ["body", "prompt"],
                "msg": POLICY_MSG,
                "type": "content_policy_violation",
            }
            return 422, {"detail": [item]}
        if req.result is None:
            req.result = await asyncio.to_thread(self._render_result, req)
        return 200, req.result

    def _render_result(self, req: FalRequest) -> dict[str, Any]:
        width, height = schema.output_size(req.model, req.input)
        fmt = str(req.input.get("output_format", "jpeg"))
        seed = int(req.input.get("seed", 0))
        nsfw = req.outcome == "nsfw"
        images = []
        for i in range(int(req.input.get("num_images", 1))):
            name = f"{req.id}/{i}.{'jpg' if fmt == 'jpeg' else fmt}"
            data = render(str(req.input["prompt"]), seed + i, width, height, fmt, black=nsfw)
            self.core.files.put(name, data, CONTENT_TYPES[fmt])
            url = self.core.output_url(req.base, f"{req.base}/files/{name}")
            images.append(
                {"url": url, "width": width, "height": height, "content_type": CONTENT_TYPES[fmt]}
            )
        return {
            "images": images,
            "timings": {"inference": round(req.latency * 0.75, 3)},
            "seed": seed,
            "has_nsfw_concepts": [nsfw] * len(images),
            "prompt": req.input["prompt"],
        }

    # --- webhooks --------------------------------------------------------------------------

    async def _send_webhook(self, req: FalRequest) -> None:
        assert req.webhook is not None
        early = req.latency * 0.1 if self.behaviour.out_of_order_webhooks else 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                req.cancel.wait(), timeout=max(0.0, req.finished - early - time.time())
            )
        if self.behaviour.take("lose_webhook_next"):
            self.core.stats.webhooks["lost"] += 1
            return
        body = json.dumps(await self._webhook_body(req)).encode()
        sign = lambda b: self._sign(req.id, b)  # noqa: E731
        await self.core.webhooks.send(req.webhook, body, sign, retry=True)
        if self.behaviour.duplicate_webhooks:
            self.core.stats.webhooks["duplicates"] += 1
            await self.core.webhooks.send(req.webhook, body, sign, retry=True)

    async def _webhook_body(self, req: FalRequest) -> dict[str, Any]:
        head = {"request_id": req.id, "gateway_request_id": req.id}
        if req.canceled_at is not None:
            return head | {"status": "ERROR", "error": "Request was cancelled", "payload": None}
        code, payload = await self._outcome(req)
        if code == 200:
            return head | {"status": "OK", "payload": payload}
        return head | {
            "status": "ERROR",
            "error": f"Invalid status code: {code}",
            "payload": payload,
        }

    def _sign(self, request_id: str, body: bytes) -> dict[str, str]:
        key = Ed25519PrivateKey.generate() if self.sign_with_unknown_key else self.signing_keys[0]
        ts = int(time.time() + self.behaviour.webhook_timestamp_skew_s)
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": USER_ID,
            "X-Fal-Webhook-Timestamp": str(ts),
            "X-Fal-Webhook-Signature": fal_sign(key, request_id, USER_ID, ts, body),
        }

    # --- gatekeeping -----------------------------------------------------------------------

    async def _lookup(
        self, request: Request, operation: str
    ) -> tuple[FalRequest | None, Response | None]:
        if (denied := await self._gate(request, operation)) is not None:
            return None, denied
        req = self.requests.get(request.path_params["rid"])
        app = f"{request.path_params['owner']}/{request.path_params['app']}"
        return (req, None) if req is not None and req.app == app else (None, None)

    async def _gate(self, request: Request, operation: str) -> Response | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Key" or not key or (self.key is not None and key != self.key):
            return JSONResponse({"detail": "Invalid or missing credentials"}, status_code=401)
        fault = await self.core.fault(operation)
        if fault == "rate_limit":
            return JSONResponse(
                {"detail": "Rate limit exceeded"},
                status_code=429,
                headers=self.core.rate_limit_headers(),
            )
        if fault == "error":
            headers = {"X-Fal-Error-Type": "runner_scheduling_failure"}
            body = {
                "detail": "Runner scheduling failure",
                "error_type": "runner_scheduling_failure",
            }
            return JSONResponse(body, status_code=self.behaviour.error_status, headers=headers)
        if fault == "garbage":
            return self.core.garbage_response()
        return None


def _rid(req: FalRequest) -> dict[str, str]:
    return {"x-fal-request-id": req.id}


def _logs(req: FalRequest, now: float) -> list[dict[str, str]]:
    started = req.created + req.latency * 0.25
    done = min(1.0, (now - started) / max(1e-6, req.finished - started))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    steps = 4  # the sampler's steps, printed as a diffusers app's tqdm bar
    step = max(0, min(steps, int(done * steps)))
    bar = f"{100 * step // steps:3d}%|{'#' * step:<{steps}}| {step}/{steps} [00:00<00:00]"
    return [
        {"message": f"Generating: {int(done * 100)}%", **_log_fields(stamp)},
        {"message": bar, **_log_fields(stamp)},
    ]


def _log_fields(stamp: str) -> dict[str, str]:
    return {"level": "INFO", "source": "USER", "timestamp": stamp}
