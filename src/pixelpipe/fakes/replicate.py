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
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixelpipe.fakes import replicate_schema as schema
from pixelpipe.fakes.common import CONTENT_TYPES, Behaviour, FakeServer, base_url, outcome_for
from pixelpipe.fakes.render import render
from pixelpipe.fakes.replicate_files import FileRefused, UploadedFiles
from pixelpipe.fakes.replicate_prediction import (
    TERMINAL,
    Prediction,
    error_message,
    iso,
    logs,
    metrics,
    sleep_unless_canceled,
)

LIST_PAGE = 100


def _iso_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _problem(status: int, detail: str, title: str = "", **extra: Any) -> JSONResponse:
    body = {"detail": detail, "status": status, **({"title": title} if title else {}), **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class FakeReplicate(FakeServer):
    """The fake. ``token=None`` accepts any bearer token; ``app`` is the ASGI application."""

    def __init__(
        self,
        *,
        token: str | None = None,
        webhook_secret: str | None = None,
        behaviour: Behaviour | None = None,
        public_url: str | None = None,
    ) -> None:
        super().__init__(behaviour, public_url)
        self.token = token
        self.webhook_secret = (
            webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        )
        self.predictions: dict[str, Prediction] = {}
        self.file_store = UploadedFiles()
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)

    def _routes(self) -> list[Route]:
        return [
            Route("/v1/models/{owner}/{name}/predictions", self.create_official, methods=["POST"]),
            Route("/v1/predictions", self.create_version, methods=["POST"]),
            Route("/v1/predictions", self.list_predictions, methods=["GET"]),
            Route("/v1/predictions/{pid}", self.get, methods=["GET"]),
            Route("/v1/predictions/{pid}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/webhooks/default/secret", self.secret, methods=["GET"]),
            Route("/v1/files", self.create_file, methods=["POST"]),
            Route("/v1/files/{fid}", self.get_file, methods=["GET"]),
            Route("/v1/models/{owner}/{name}/versions/{vid}", self.version, methods=["GET"]),
            *self.core.control_routes(),
        ]

    # --- endpoints -------------------------------------------------------------------------

    async def create_file(self, request: Request) -> Response:
        if (denied := await self._gate(request, "files")) is not None:
            return denied
        body = await request.body()
        try:
            stored = self.file_store.create(request.headers.get("content-type", ""), body)
        except FileRefused as exc:
            return _problem(400, str(exc), "Bad request")
        return JSONResponse(stored.public(self._base(request)), status_code=201)

    async def get_file(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        stored = self.file_store.files.get(request.path_params["fid"])
        if stored is None:
            return _problem(404, "The requested resource could not be found.", "Not found")
        return JSONResponse(stored.public(self._base(request)))

    def _base(self, request: Request) -> str:
        return base_url(request, self.core.public_url)

    def _model_input(self, inp: Any, base: str) -> Any:
        """The input as the model reads it: this server's file URLs become the files' bytes."""
        if not isinstance(inp, dict):
            return inp
        return {k: self.file_store.resolve(v, base) for k, v in inp.items()}

    async def create_official(self, request: Request) -> Response:
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        if (denied := await self._gate(request, "create")) is not None:
            return denied
        if model not in schema.SCHEMAS:
            return _problem(404, "The requested resource could not be found.", "Not found")
        return await self._create(request, model, "hidden", schema.BODY_FIELDS)

    async def create_version(self, request: Request) -> Response:
        if (denied := await self._gate(request, "create")) is not None:
            return denied
        body = await _json_object(request)
        model = schema.model_of_version(body.get("version") if body else None)
        if model is None:
            return _problem(
                422,
                "The specified version does not exist (or perhaps you don't have permission "
                "to use it?)",
                "Invalid version or not permitted",
            )
        return await self._create(
            request, model, schema.version_id(model), schema.BODY_FIELDS | {"version"}
        )

    async def get(self, request: Request) -> Response:
        if (denied := await self._gate(request, "get")) is not None:
            return denied
        pred = self.predictions.get(request.path_params["pid"])
        if pred is None:
            return _problem(404, "The requested resource could not be found.", "Not found")
        return JSONResponse(await self._snapshot(pred))

    async def list_predictions(self, request: Request) -> Response:
        """``GET /v1/predictions``: newest first, 100 a page, ``created_after``/``created_before``
        (ISO 8601) filters, an opaque ``cursor`` in ``next``/``previous``."""
        if (denied := await self._gate(request, "list")) is not None:
            return denied
        query = request.query_params
        try:
            after = _iso_time(query.get("created_after"))
            before = _iso_time(query.get("created_before"))
            start = int(base64.urlsafe_b64decode(query.get("cursor") or "MA==").decode() or 0)
        except ValueError:
            return _problem(400, "Invalid filter or cursor", "Bad request")
        chosen = sorted(
            (
                p
                for p in self.predictions.values()
                if (after is None or p.created >= after) and (before is None or p.created < before)
            ),
            key=lambda p: p.created,
            reverse=True,
        )
        page = chosen[start : start + LIST_PAGE]
        results = [await self._snapshot(p) for p in page]
        base = f"{base_url(request, self.core.public_url)}/v1/predictions"
        filters = "".join(
            f"&{k}={query[k]}" for k in ("created_after", "created_before") if k in query
        )

        def link(offset: int) -> str:
            cursor = base64.urlsafe_b64encode(str(offset).encode()).decode()
            return f"{base}?cursor={cursor}{filters}"

        return JSONResponse(
            {
                "next": link(start + LIST_PAGE) if start + LIST_PAGE < len(chosen) else None,
                "previous": link(max(0, start - LIST_PAGE)) if start > 0 else None,
                "results": results,
            }
        )

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
        created = iso(0.0)
        return JSONResponse(
            {"id": vid, "created_at": created, "cog_version": "0.9.0", "openapi_schema": {}}
        )

    # --- create ----------------------------------------------------------------------------

    async def _create(
        self, request: Request, model: str, version: str, allowed: frozenset[str]
    ) -> Response:
        body = await _json_object(request)
        if body is None:
            return _problem(400, "Request body must be a JSON object", "Bad request")
        try:
            model_input = self._model_input(body.get("input"), self._base(request))
        except FileRefused as exc:
            bad = [{"type": "format", "field": "input", "description": str(exc)}]
            return _problem(422, f"- input: {exc}\n", "Input validation failed", invalid_fields=bad)
        invalid = schema.body_errors(body, allowed) or schema.validate(model, model_input)
        if invalid:
            detail = "".join(f"- {e['field']}: {e['description']}\n" for e in invalid)
            return _problem(422, detail, "Input validation failed", invalid_fields=invalid)
        hold = schema.prefer_wait(request.headers.get("prefer"))
        if hold == 0:
            return _problem(400, "Prefer: wait=n needs 1 <= n <= 60", "Invalid Prefer header")
        return await self._created(self._new(request, model, version, body), hold)

    async def _created(self, pred: Prediction, hold: int | None) -> Response:
        """201 with ``Location``; with ``Prefer: wait`` held until terminal or ``hold`` s."""
        if hold is not None:
            await sleep_unless_canceled(pred, min(hold, pred.finished - time.time()))
        elif self.behaviour.create_answer_delay_s > 0:
            await asyncio.sleep(self.behaviour.create_answer_delay_s)
        snap = await self._snapshot(pred, blocking=hold is not None)
        headers = {"Location": snap["urls"]["get"]}
        if hold is not None:
            headers["Preference-Applied"] = f"wait={hold}"
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
            "logs": logs(pred, phase, now),
            "output": output,
            "error": error_message(pred) if phase == "failed" else None,
            "status": phase,
            "created_at": iso(pred.created),
            "started_at": iso(pred.started) if phase not in ("starting",) else None,
            "completed_at": iso(pred.canceled_at or pred.finished) if phase in TERMINAL else None,
            "data_removed": False,
            "metrics": metrics(pred) if phase == "succeeded" else {},
            "urls": {"get": url, "cancel": f"{url}/cancel", "web": f"{pred.base}/p/{pred.id}"},
            **pred.echo,
        }

    async def _output(self, pred: Prediction) -> Any:
        if pred.output is None:
            pred.output = await asyncio.to_thread(self._render_outputs, pred)
        return pred.output

    def _render_outputs(self, pred: Prediction) -> Any:
        fmt = str(pred.input.get("output_format", "webp"))
        width, height = schema.output_size(pred.model, self._model_input(pred.input, pred.base))
        seed = int(pred.input.get("seed", 0))
        count = 1 if "pro" in pred.model else int(pred.input.get("num_outputs", 1))
        urls = []
        for i in range(count):
            data = render(str(pred.input["prompt"]), seed + i, width, height, fmt)
            name = f"{pred.id}/out-{i}.{fmt}"
            self.core.files.put(name, data, CONTENT_TYPES[fmt])
            urls.append(self.core.output_url(pred.base, f"{pred.base}/files/{name}"))
        return urls[0] if "pro" in pred.model else urls

    # --- webhooks --------------------------------------------------------------------------

    async def _send_webhooks(self, pred: Prediction) -> None:
        assert pred.webhook is not None
        if pred.events & {"start", "output", "logs"}:
            await sleep_unless_canceled(pred, (pred.started + pred.finished) / 2 - time.time())
            if pred.phase(time.time()) == "processing":
                await self._deliver(pred, await self._snapshot(pred), retry=False)
        await sleep_unless_canceled(pred, pred.finished - time.time())
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
        if fault == "garbage":
            return self.core.garbage_response()
        return None


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        data = await request.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
