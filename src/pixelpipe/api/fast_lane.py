"""The two hot POSTs, answered without FastAPI's per-request machinery.

``POST /v1/generations`` and ``POST /v1/images/generations`` are what clients hammer (cache hits,
OpenAI SDK loops, batch jobs). Through FastAPI each costs ~0.5 ms of CPU before and after the
handler (route matching, dependency solving, two AsyncExitStacks, response-model re-validation):
more than the pipeline's own work for a cache hit. This pure-ASGI layer sits inside the security
middleware (headers, API keys, body limits still apply to every request) and calls the route's own
endpoint directly.

It cannot drift from the route: when the app starts, :func:`pixelpipe.api.lane_plan.plan_lane`
reads from the route FastAPI would dispatch to what to check (headers and their constraints,
content type, body model, dependencies) and which endpoint to call. A request the plan does not
accept goes to the route untouched, so every refusal is exactly FastAPI's. A route the plan cannot
express is left to FastAPI entirely, with a warning — not a failed start: the route is always
right, the lane is only faster, and ``tests/api_parity`` fails on the shipped routes whenever the
lane stands aside for one of them, which is where a developer learns it, not an operator.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, cast

from fastapi import FastAPI
from pydantic import ValidationError
from starlette._utils import get_route_path  # the path the router matches (root_path off)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pixelpipe.api.decoding import reads_json
from pixelpipe.api.deps import request_body
from pixelpipe.api.lane_plan import LanePlan, StandAside, plan_lane
from pixelpipe.api.middleware import BODY_KEY, replay_body

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]
Handler = Callable[[Request, Exception], Awaitable[Response] | Response]
HOT_POSTS = ("/v1/generations", "/v1/images/generations")
log = logging.getLogger("pixelpipe.api.fast_lane")


class FastLane:
    def __init__(self, app: ASGIApp, *, paths: Iterable[str] = HOT_POSTS) -> None:
        self.app = app
        self.paths = tuple(paths)
        self.plans: dict[str, LanePlan] | None = None  # derived when the app starts
        self.handlers: tuple[dict[Any, Handler], dict[int, Handler]] = ({}, {})

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                self.start(scope["app"])
            await self.app(scope, receive, send)
            return
        plans = self.plans if self.plans is not None else self.start(scope["app"])
        path = get_route_path(scope) if scope.get("root_path") else scope["path"]
        plan = plans.get(path)
        if plan is None or scope["method"] != "POST" or scope.get("fastapi.telemetry"):
            await self.app(scope, receive, send)  # traced requests get the route's spans
            return
        request = Request(scope, receive)
        try:
            response = await answer(plan, request)
        except Exception as exc:  # the app's handlers, as FastAPI's ExceptionMiddleware runs them
            response = await self.handle(request, exc)
        if response is None:  # a body that came with the scope is still unread in the stream
            if BODY_KEY not in scope:
                receive = replay_body(await request.body(), receive)
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    def start(self, app: FastAPI) -> dict[str, LanePlan]:
        """Plan each path from its route, once; warn once for each the lane leaves to FastAPI."""
        plans: dict[str, LanePlan] = {}
        for path in self.paths:
            plan = plan_lane(app, path)
            if isinstance(plan, StandAside):
                log.warning(
                    "the fast lane leaves POST %s to FastAPI (slower, same answers): %s",
                    path,
                    "; ".join(plan.reasons),
                )
            else:
                plans[path] = plan
        # ServerErrorMiddleware, outside every middleware, handles what these do not (a 500)
        handlers = {k: v for k, v in app.exception_handlers.items() if k not in (500, Exception)}
        by_class = {k: v for k, v in handlers.items() if not isinstance(k, int)}
        by_status = {k: v for k, v in handlers.items() if isinstance(k, int)}
        self.handlers = (by_class, by_status)
        self.plans = plans
        return plans

    async def handle(self, request: Request, exc: Exception) -> Response:
        """The app's handler for ``exc`` (HTTP status first, then class), else re-raise."""
        by_class, by_status = self.handlers
        handler = by_status.get(exc.status_code) if isinstance(exc, HTTPException) else None
        if handler is None:
            handler = next((by_class[c] for c in type(exc).__mro__ if c in by_class), None)
        if handler is None:
            raise exc
        if inspect.iscoroutinefunction(handler):
            response: Response = await handler(request, exc)
        else:
            sync = cast(Callable[[Request, Exception], Response], handler)
            response = await run_in_threadpool(sync, request, exc)
        return response


async def answer(plan: LanePlan, request: Request) -> Response | None:
    """The route's answer, or None (let FastAPI answer) when ``request`` is not plain valid."""
    overrides = plan.overrides
    if overrides is not None and overrides.dependency_overrides:
        return None  # tests swapping a dependency: FastAPI resolves the override
    values: dict[str, Any] = {}
    if plan.headers:
        headers = request.headers
        for rule in plan.headers:
            ok, values[rule.param] = rule.read(headers)
            if not ok:
                return None
    body = plan.body
    if body is not None:
        content_type = request.headers.get("content-type")
        if not (reads_json(content_type) if content_type else body.json_without_content_type):
            return None  # FastAPI does not parse such a body as JSON: its answer is the reference
        raw = await request_body(request)
        if body.max_bytes is not None and len(raw) >= body.max_bytes:
            return None
        try:
            values[body.param] = body.model.model_validate_json(raw)
        except ValidationError:
            return None
    for call, names in plan.dependencies:
        value = await call(request)
        for name in names:
            values[name] = value
    if plan.request_param is not None:
        values[plan.request_param] = request
    return await plan.endpoint(**values)
