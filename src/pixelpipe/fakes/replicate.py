"""A protocol-faithful fake of Replicate's HTTP API (providers.md §1 and the §5 checklist).

Base URL: ``http://HOST:PORT`` (paths start with ``/v1/``). Predictions run on a clock:
``starting`` → ``processing`` (logs with a percent bar) → ``succeeded`` | ``failed`` after
``latency_s``. Outputs are served from ``/files/…`` and expire. Webhooks are signed with Standard
Webhooks (``whsec_`` secret, also at ``GET /v1/webhooks/default/secret``); the terminal one is
retried on errors, 4xx and 5xx. Intermediate events (``start``, ``output``, ``logs``) are sent once,
mid-run, as a ``processing`` snapshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixelpipe.fakes import replicate_schema as schema
from pixelpipe.fakes.common import CONTENT_TYPES, Behaviour, FakeCore, base_url, outcome_for
from pixelpipe.fakes.render import render

NSFW_ERROR = (
    "All generated images contained NSFW content. Try running it again with a different prompt."
)
POLICY_ERROR = (
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
)
_BODY_FIELDS = {"input", "webhook", "webhook_events_filter", "stream", "webhook_completed"}
_EVENTS = {"start", "output", "logs", "completed"}
_PREFER = re.compile(r"^\s*wait(?:=(\d+))?\s*$")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _problem(status: int, detail: str, title: str = "", **extra: Any) -> JSONResponse:
    body = {"detail": detail, "status": status, **({"title": title} if title else {}), **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


@dataclass
class Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    created: float
    latency: float
    outcome: str
    base: str
    webhook: str | None = None
    events: frozenset[str] = frozenset()
    echo: dict[str, Any] = field(default_factory=dict)
    canceled_at: float | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    output: Any = None

    @property
    def started(self) -> float:
        return self.created + self.latency * 0.25

    @property
    def finished(self) -> float:
        return self.created + self.latency

    def phase(self, now: float) -> str:
        if self.canceled_at is not None:
            return "canceled"
        if now >= self.finished:
            return "failed" if self.outcome != "ok" else "succeeded"
        return "processing" if now >= self.started else "starting"


class FakeReplicate:
    """The fake. ``token=None`` accepts any bearer token; ``app`` is the ASGI application."""

    def __init__(
        self,
        *,
        token: str | None = None,
        webhook_secret: str | None = None,
        behaviour: Behaviour | None = None,
        public_url: str | None = None,
    ) -> None:
        self.core = FakeCore(behaviour, public_url)
        self.token = token
        self.webhook_secret = (
            webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        )
        self.predictions: dict[str, Prediction] = {}
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)

    @property
    def behaviour(self) -> Behaviour:
        return self.core.behaviour

    async def aclose(self) -> None:
        await self.core.aclose()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    def _routes(self) -> list[Route]:
        return [
            Route("/v1/models/{owner}/{name}/predictions", self.create_official, methods=["POST"]),
            Route("/v1/predictions", self.create_version, methods=["POST"]),
            Route("/v1/predictions/{pid}", self.get, methods=["GET"]),
            Route("/v1/predictions/{pid}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/webhooks/default/secret", self.secret, methods=["GET"]),
            Route("/v1/models/{owner}/{name}/versions/{vid}", self.version, methods=["GET"]),
            *self.core.control_routes(),
        ]

    # --- endpoints -------------------------------------------------------------------------

    async def create_official(self, request: Request) -> Response:
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        if (denied := await self._gate(request, "create")) is not None:
            return denied
        if model not in schema.SCHEMAS:
            return _problem(404, "The requested resource could not be found.", "Not found")
        return await self._create(request, model, "hidden", _BODY_FIELDS)

    async def create_version(self, request: Request) -> Response:
        if (denied := await self._gate(request, "create")) is not None:
            return denied
        body = await _json_object(request)
        model = _model_of_version(body.get("version") if body else None)
        if model is None:
            return _problem(
                422,
                "The specified version does not exist (or perhaps you don't have permission "
                "to use it?)",
                "Invalid version or not permitted",
            )
        return await self._create(
            request, model, schema.version_id(model), {*_BODY_FIELDS, "version"}
        )

    async def get(self, request: Request) -> Response:
        if (denied := await self._gate(request, "get")) is not None:
            return denied
        pred = self.predictions.get(request.path_params["pid"])
        if pred is None:
            return _problem(404, "The requested resource could not be found.", "Not found")
        return JSONResponse(await self._snapshot(pred))

    async def cancel(self, request: Request) -> Response:
        if (denied := await self._gate(request, "cancel")) is not None:
            return denied
        pred = self.predictions.get(request.path_params["pid"])
        if pred is None:
            return _problem(404, "The requested resource could not be found.", "Not found")
        if pred.phase(time.time()) in ("starting", "processing"):
            pred.canceled_at = time.time()
            pred.cancel.set()
        return JSONResponse(await self._snapshot(pred))

    async def secret(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        return JSONResponse({"key": self.webhook_secret})

    async def version(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        vid = request.path_params["vid"]
        if vid not in schema.VERSIONS:
            return _problem(404, "The requested resource could not be found.", "Not found")
        created = _iso(0.0)
        return JSONResponse(
            {"id": vid, "created_at": created, "cog_version": "0.9.0", "openapi_schema": {}}
        )

    # --- create ----------------------------------------------------------------------------

    async def _create(
        self, request: Request, model: str, version: str, allowed: set[str]
    ) -> Response:
        body = await _json_object(request)
        if body is None:
            return _problem(400, "Request body must be a JSON object", "Bad request")
        invalid = _body_errors(body, allowed) or schema.validate(model, body.get("input"))
        if invalid:
            detail = "".join(f"- {e['field']}: {e['description']}\n" for e in invalid)
            return _problem(422, detail, "Input validation failed", invalid_fields=invalid)
        wait = _prefer_wait(request.headers.get("prefer"))
        if wait == 0:
            return _problem(400, "Prefer: wait=n needs 1 <= n <= 60", "Invalid Prefer header")
        pred = self._new(request, model, version, body)
        if wait is not None:
            await _wait(pred, min(wait, pred.finished - time.time()))
        snap = await self._snapshot(pred, blocking=wait is not None)
        headers = {"Location": snap["urls"]["get"]}
        if wait is not None:
            headers["Preference-Applied"] = f"wait={wait}"
        return JSONResponse(snap, status_code=201, headers=headers)

    def _new(self, request: Request, model: str, version: str, body: dict[str, Any]) -> Prediction:
        pid = base64.b32encode(secrets.token_bytes(16)).decode().lower().rstrip("=")[:26]
        inp = dict(body["input"])
        pred = Prediction(
            id=pid,
            model=model,
            version=version,
            input=inp,
            created=time.time(),
            latency=self.behaviour.latency_s,
            outcome=outcome_for(str(inp.get("prompt", "")), self.behaviour),
            base=base_url(request, self.core.public_url),
            webhook=body.get("webhook"),
            events=frozenset(body.get("webhook_events_filter") or ("output", "completed")),
            echo={k: body[k] for k in ("webhook", "webhook_events_filter") if k in body},
        )
        self.predictions[pid] = pred
        self.core.stats.creates[model] += 1
        if pred.webhook:
            self.core.background.spawn(self._send_webhooks(pred))
        return pred

    # --- snapshots -------------------------------------------------------------------------

    async def _snapshot(
        self, pred: Prediction, *, blocking: bool = False, at: float | None = None
    ) -> dict[str, Any]:
        now = time.time() if at is None else at
        phase = pred.phase(now)
        if blocking and phase == "processing":
            phase = (
                "starting"  # a blocking create answers terminal or starting, never processing+null
            )
        output = await self._output(pred) if phase == "succeeded" else None
        url = f"{pred.base}/v1/predictions/{pred.id}"
        return {
            "id": pred.id,
            "model": pred.model,
            "version": pred.version,
            "input": pred.input,
            "logs": _logs(pred, phase, now),
            "output": output,
            "error": _error(pred) if phase == "failed" else None,
            "status": phase,
            "created_at": _iso(pred.created),
            "started_at": _iso(pred.started) if phase not in ("starting",) else None,
            "completed_at": _iso(pred.canceled_at or pred.finished) if phase in _TERMINAL else None,
            "data_removed": False,
            "metrics": _metrics(pred) if phase == "succeeded" else {},
            "urls": {"get": url, "cancel": f"{url}/cancel", "web": f"{pred.base}/p/{pred.id}"},
            **pred.echo,
        }

    async def _output(self, pred: Prediction) -> Any:
        if pred.output is None:
            pred.output = await asyncio.to_thread(self._render_outputs, pred)
        return pred.output

    def _render_outputs(self, pred: Prediction) -> Any:
        fmt = str(pred.input.get("output_format", "webp"))
        width, height = schema.output_size(pred.model, pred.input)
        seed = int(pred.input.get("seed", 0))
        count = 1 if "pro" in pred.model else int(pred.input.get("num_outputs", 1))
        urls = []
        for i in range(count):
            data = render(str(pred.input["prompt"]), seed + i, width, height, fmt)
            name = f"{pred.id}/out-{i}.{fmt}"
            self.core.files.put(name, data, CONTENT_TYPES[fmt])
            urls.append(f"{pred.base}/files/{name}")
        return urls[0] if "pro" in pred.model else urls

    # --- webhooks --------------------------------------------------------------------------

    async def _send_webhooks(self, pred: Prediction) -> None:
        assert pred.webhook is not None
        if pred.events & {"start", "output", "logs"}:
            await _wait(pred, (pred.started + pred.finished) / 2 - time.time())
            if pred.phase(time.time()) == "processing":
                await self._deliver(pred, await self._snapshot(pred), retry=False)
        await _wait(pred, pred.finished - time.time())
        if "completed" not in pred.events:
            return
        if self.behaviour.take("lose_webhook_next"):
            self.core.stats.webhooks["lost"] += 1
            return
        await self._deliver_terminal(pred)

    async def _deliver_terminal(self, pred: Prediction) -> None:
        snap = await self._snapshot(pred)
        msg_id = "msg_" + secrets.token_hex(12)
        await self._deliver(pred, snap, retry=True, msg_id=msg_id)
        if self.behaviour.duplicate_webhooks:
            self.core.stats.webhooks["duplicates"] += 1
            await self._deliver(pred, snap, retry=True, msg_id=msg_id)
        if self.behaviour.out_of_order_webhooks:
            self.core.stats.webhooks["stale"] += 1
            stale = await self._snapshot(pred, at=(pred.started + pred.finished) / 2)
            stale["status"] = "processing"
            await self._deliver(pred, stale, retry=False)

    async def _deliver(
        self, pred: Prediction, snap: dict[str, Any], *, retry: bool, msg_id: str | None = None
    ) -> None:
        assert pred.webhook is not None
        body = json.dumps(snap).encode()
        msg = msg_id or "msg_" + secrets.token_hex(12)
        await self.core.webhooks.send(pred.webhook, body, lambda b: self._sign(msg, b), retry=retry)

    def _sign(self, msg_id: str, body: bytes) -> dict[str, str]:
        ts = int(time.time() + self.behaviour.webhook_timestamp_skew_s)
        when = datetime.fromtimestamp(ts, UTC)
        signature = Webhook(self.webhook_secret).sign(msg_id, when, body.decode())
        return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}

    # --- gatekeeping -----------------------------------------------------------------------

    def _auth(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer" and token and (self.token is None or token == self.token):
            return None
        return _problem(401, "You did not pass a valid authentication token", "Unauthenticated")

    async def _gate(self, request: Request, operation: str) -> Response | None:
        if (denied := self._auth(request)) is not None:
            return denied
        fault = await self.core.fault(operation)
        if fault == "rate_limit":
            wait = self.behaviour.retry_after if self.behaviour.retry_after.isdigit() else "30"
            detail = f"Request was throttled. Your rate limit resets in ~{wait}s."
            resp = _problem(429, detail, "Too Many Requests")
            resp.headers.update(self.core.rate_limit_headers())
            return resp
        if fault == "error":
            status = self.behaviour.error_status
            return _problem(status, "Internal server error", "Internal Server Error")
        return None


_TERMINAL = ("succeeded", "failed", "canceled")


async def _wait(pred: Prediction, seconds: float) -> None:
    """Sleep up to ``seconds``, waking early if the prediction is canceled."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pred.cancel.wait(), timeout=max(0.0, seconds))


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        data = await request.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _body_errors(body: dict[str, Any], allowed: set[str]) -> list[dict[str, str]]:
    errors = [
        {
            "type": "additional_property_not_allowed",
            "field": "(root)",
            "description": f"Additional property {k} is not allowed",
        }
        for k in body
        if k not in allowed
    ]
    if "input" not in body:
        errors.append({"type": "required", "field": "(root)", "description": "input is required"})
    hook = body.get("webhook")
    if hook is not None and not (
        isinstance(hook, str) and hook.startswith(("http://", "https://"))
    ):
        errors.append(
            {"type": "format", "field": "webhook", "description": "Does not match format 'uri'"}
        )
    events = body.get("webhook_events_filter")
    if events is not None and not (isinstance(events, list) and set(events) <= _EVENTS):
        errors.append(
            {
                "type": "enum",
                "field": "webhook_events_filter",
                "description": "must be start, output, logs or completed",
            }
        )
    return errors


def _prefer_wait(header: str | None) -> int | None:
    """None = no wait; 0 = invalid; else the seconds to hold the request (1..60)."""
    if not header:
        return None
    m = _PREFER.match(header)
    if not m:
        return None
    n = int(m.group(1)) if m.group(1) else 60
    return n if 1 <= n <= 60 else 0


def _model_of_version(version: Any) -> str | None:
    if not isinstance(version, str):
        return None
    if version in schema.VERSIONS:
        return schema.VERSIONS[version]
    name, sep, vid = version.partition(":")
    if sep:
        return name if schema.VERSIONS.get(vid) == name else None
    return version if version in schema.SCHEMAS else None


def _logs(pred: Prediction, phase: str, now: float) -> str:
    if phase == "starting":
        return ""
    done = (
        1.0
        if phase in _TERMINAL
        else (now - pred.started) / max(1e-6, pred.finished - pred.started)
    )
    steps = int(pred.input.get("num_inference_steps", 4))
    cur = min(steps, int(steps * done))
    pct = int(100 * cur / steps)
    bar = "█" * (pct // 10) + " " * (10 - pct // 10)
    return (
        f"Using seed: {pred.input.get('seed', 0)}\n{pct:3d}%|{bar}| {cur}/{steps} [00:00<00:00]\n"
    )


def _error(pred: Prediction) -> str:
    return NSFW_ERROR if pred.outcome == "nsfw" else POLICY_ERROR


def _metrics(pred: Prediction) -> dict[str, Any]:
    count = 1 if isinstance(pred.output, str) else len(pred.output or [])
    predict = round(pred.latency * 0.75, 3)
    return {"predict_time": predict, "total_time": round(pred.latency, 3), "image_count": count}
