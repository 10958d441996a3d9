"""The two hot POSTs, answered without FastAPI's per-request machinery.

``POST /v1/generations`` and ``POST /v1/images/generations`` are what clients hammer (cache hits,
OpenAI SDK loops, batch jobs). Through FastAPI each costs ~0.5 ms of CPU before and after the
handler (route matching, dependency solving, two AsyncExitStacks, response-model re-validation):
more than the pipeline's own work for a cache hit. This pure-ASGI layer sits inside the security
middleware (headers, API keys, body limits still apply to every request) and runs the same handlers
directly. The FastAPI routes stay the documented definition (OpenAPI) and still answer whatever
the lane passes on: a body that does not validate goes to them untouched, so its 422 is exactly
the one FastAPI gives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from pixelpipe.api.deps import get_caller, get_services, request_body
from pixelpipe.api.routes_generations import submission_response
from pixelpipe.api.routes_openai import create_images
from pixelpipe.api.urls import request_base
from pixelpipe.intake import GenerationRequest
from pixelpipe.security.http import BODY_KEY, replay_body

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]
Handler = Callable[[Request], Awaitable[Response | None]]
MAX_IDEMPOTENCY_KEY = 255  # as declared on the FastAPI route


async def create_generation(request: Request) -> Response | None:
    """``POST /v1/generations``; None (let FastAPI answer) when the input does not validate."""
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        return None
    if not _is_json(request.headers.get("content-type")):
        return None  # FastAPI does not parse such a body as JSON: its answer is the reference
    try:
        body = GenerationRequest.model_validate_json(await request_body(request))
    except ValidationError:
        return None
    svc = await get_services(request)
    caller = await get_caller(request)
    return await submission_response(svc, body, caller, idempotency_key, request_base(svc, request))


def _is_json(content_type: str | None) -> bool:
    """The content types FastAPI reads a JSON body from: none, application/json, …/*+json."""
    if not content_type:
        return True
    main, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    return main == "application" and (subtype == "json" or subtype.endswith("+json"))


ROUTES: dict[str, Handler] = {
    "/v1/generations": create_generation,
    "/v1/images/generations": create_images,
}


class FastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        handler = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except Exception as exc:  # the app's own handlers: the same problem+json as FastAPI's
            response = await _handle(request, exc)
        if response is None:  # a body that came with the scope is still unread in the stream
            if BODY_KEY not in scope:
                receive = replay_body(await request.body(), receive)
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


async def _handle(request: Request, exc: Exception) -> Response:
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            response: Response = await handler(request, exc)
            return response
    raise exc
