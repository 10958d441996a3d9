"""HTTP hardening as pure ASGI middleware: security headers, authentication, input limits.

Installed by the app factory (:func:`install`), outermost first:

1. **Security headers** on every response that does not set its own: ``X-Content-Type-Options:
   nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` and a
   Content-Security-Policy — ``default-src 'none'; frame-ancestors 'none'`` for API answers and
   images (nothing in them may load or run anything), ``frame-ancestors 'none'`` only for HTML that
   brings no policy of its own (the interactive ``/docs``); the web pages send their own strict CSP.
2. **Authentication** (:mod:`.auth`): 401 / 403 / 429 problem+json before any handler runs.
3. **Input limits**: a request body larger than ``PIXELPIPE_MAX_BODY_BYTES`` (64 KiB; provider
   webhooks get 1 MiB, image uploads to ``/v1/images/edits|variations``
   ``PIXELPIPE_MAX_UPLOAD_BYTES``, 25 MiB) is refused with 413 before it is read whole, and
   JSON nested deeper than ``PIXELPIPE_MAX_JSON_DEPTH`` (32) with 422 — the JSON parser is
   recursive, so a 64 KiB body of ``[[[[…`` would otherwise exhaust the stack.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pixelpipe.api.problems import error_for
from pixelpipe.errors import DatabaseUnavailable, InvalidRequest, PixelpipeError, Unauthorized
from pixelpipe.security.auth import CALLER_KEY, Authenticator, _db
from pixelpipe.settings import Settings

log = logging.getLogger("pixelpipe.security")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
UPLOAD_PATHS = frozenset({"/v1/images/edits", "/v1/images/variations"})
BODY_KEY = "pixelpipe.body"  # the request body InputLimits read whole (scope entry)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HTML_CSP = "frame-ancestors 'none'"
_BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class PayloadTooLarge(PixelpipeError):
    code = "payload_too_large"
    status = 413
    title = "Request body too large"


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
            decision = await self.auth.check(scope, _db(scope))
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

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_json_depth: int,
        max_upload_bytes: int = 25 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_depth = max_json_depth
        self.max_upload = max_upload_bytes

    def limit_for(self, path: str) -> int:
        if path.startswith("/v1/webhooks/"):
            return max(self.max_body, WEBHOOK_MAX_BODY_BYTES)
        if path in UPLOAD_PATHS:
            return max(self.max_body, self.max_upload)
        return self.max_body

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(str(scope.get("path", "")))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _send_problem(scope, send, _too_large(limit))
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
            if len(body) > limit:
                await _send_problem(scope, send, _too_large(limit))
                return
        if b"json" in headers.get(b"content-type", b"") and too_deep(bytes(body), self.max_depth):
            detail = f"JSON nested deeper than {self.max_depth} levels; flatten the document"
            await _send_problem(scope, send, InvalidRequest(detail, field="body"))
            return
        scope[BODY_KEY] = bytes(body)  # handlers that know the key skip re-reading the stream
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


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body larger than {limit} bytes", limit_bytes=limit)


def too_deep(body: bytes, max_depth: int) -> bool:
    """True when JSON ``body`` nests arrays/objects deeper than ``max_depth`` (strings skipped)."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False  # cannot be deeper than the number of openers: the common, cheap case
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def install(app: FastAPI, settings: Settings) -> Authenticator:
    """Add the middleware to ``app`` and set ``app.state.auth`` (read by ``get_caller``)."""
    auth = Authenticator(settings, limiter_storage=limiter_storage(settings))
    app.state.auth = auth
    # add_middleware prepends: the last one added runs first (outermost)
    app.add_middleware(
        InputLimits,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(Authenticate, auth=auth)
    app.add_middleware(SecurityHeaders)
    return auth


def limiter_storage(settings: Settings) -> Any:
    """Per-key rate-limit counters: in memory (embedded), or in Redis when one is configured."""
    from limits.aio.storage import MemoryStorage

    if settings.redis_url:
        try:
            from limits.aio.storage import RedisStorage

            return RedisStorage("async+" + settings.redis_url, implementation="redispy")
        except Exception as exc:  # missing client library or a bad URL: keep serving
            log.warning("rate limits stay per process (Redis storage unavailable: %s)", exc)
    return MemoryStorage()
