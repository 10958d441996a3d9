"""HTTP hardening as pure ASGI middleware: security headers, authentication, input limits.

The decisions are :mod:`pixelpipe.security`'s (who may call what: :mod:`~pixelpipe.security.auth`;
how large and deep a body may be: :mod:`~pixelpipe.security.limits`); this adapter applies them to
requests and answers refusals in the API's error shapes. Installed by the app factory
(:func:`install`), outermost first:

1. **Security headers** on every response that does not set its own: ``X-Content-Type-Options:
   nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` and a
   Content-Security-Policy — ``default-src 'none'; frame-ancestors 'none'`` for API answers and
   images (nothing in them may load or run anything), ``frame-ancestors 'none'`` only for HTML that
   brings no policy of its own (the interactive ``/docs``); the web pages send their own strict CSP.
2. **Authentication**: 401 / 403 / 429 problem+json before any handler runs.
3. **Input limits**: 413 for a body over its path's limit (declared or streamed), 422 for JSON
   nested too deep; the body read whole is left in the scope (:data:`BODY_KEY`) for the handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pixelpipe.api.problems import error_for
from pixelpipe.errors import DatabaseUnavailable, PixelpipeError, Unauthorized
from pixelpipe.security.auth import CALLER_KEY, Authenticator, limiter_storage, scope_database
from pixelpipe.security.limits import BodyLimits, too_deep
from pixelpipe.settings import Settings

log = logging.getLogger("pixelpipe.security")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

BODY_KEY = "pixelpipe.body"  # the request body InputLimits read whole (scope entry)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HTML_CSP = "frame-ancestors 'none'"
_BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


async def _send_problem(
    scope: MutableMapping[str, Any],
    send: Send,
    exc: PixelpipeError,
    extra: dict[str, str] | None = None,
) -> None:
    """problem+json, or OpenAI's error envelope on the OpenAI-compatible routes (the SDKs then
    raise with our message instead of a bare "Error code: 401")."""
    method, path = str(scope.get("method", "GET")), str(scope.get("path", ""))
    response = error_for(method, path, exc)
    for name, value in (extra or {}).items():
        response.headers[name] = value
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in _BASE_HEADERS if n not in present]
                if b"content-security-policy" not in present:
                    ctype = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                    csp = HTML_CSP if ctype.startswith(b"text/html") else API_CSP
                    headers.append((b"content-security-policy", csp.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Authenticate:
    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            decision = await self.auth.check(scope, scope_database(scope))
        except Unauthorized as exc:
            await _send_problem(scope, send, exc, {"WWW-Authenticate": 'Bearer realm="pixelpipe"'})
            return
        except DatabaseUnavailable as exc:  # could not tell whether keys exist: never anonymous
            await _send_problem(scope, send, exc, {"Retry-After": "1"})
            return
        except PixelpipeError as exc:
            await _send_problem(scope, send, exc)
            return
        except (DBAPIError, PoolTimeout) as exc:  # key lookup while the database is locked
            log.warning("API key check answered 503: %s", type(exc).__name__)
            busy = DatabaseUnavailable("the database is busy; retry in a moment", retry_after=1)
            await _send_problem(scope, send, busy, {"Retry-After": "1"})
            return
        scope[CALLER_KEY] = decision.caller
        await self.app(scope, receive, send)


class InputLimits:
    """Buffer request bodies (they are small by contract) to enforce size and JSON depth."""

    def __init__(self, app: ASGIApp, *, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limits.limit_for(str(scope.get("path", "")))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _send_problem(scope, send, self.limits.too_large(limit))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = bool(message.get("more_body"))
            if size > limit:
                await _send_problem(scope, send, self.limits.too_large(limit))
                return
        body = bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)  # most: one message
        depth = self.limits.max_json_depth
        if b"json" in headers.get(b"content-type", b"") and too_deep(body, depth):
            await _send_problem(scope, send, self.limits.too_deep())
            return
        scope[BODY_KEY] = body  # handlers that know the key skip re-reading the stream
        await self.app(scope, replay_body(scope[BODY_KEY], receive), send)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read whole) first, then goes on with
    the connection's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def install(app: FastAPI, settings: Settings) -> Authenticator:
    """Add the middleware to ``app`` and set ``app.state.auth`` (read by ``get_caller``)."""
    auth = Authenticator(settings, limiter_storage=limiter_storage(settings))
    app.state.auth = auth
    # add_middleware prepends: the last one added runs first (outermost)
    app.add_middleware(InputLimits, limits=BodyLimits.from_settings(settings))
    app.add_middleware(Authenticate, auth=auth)
    app.add_middleware(SecurityHeaders)
    return auth
