"""One problem+json handler for every error (RFC 9457). Stack traces go to logs, never out."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from pixelpipe.api.decoding import invalid_json_detail
from pixelpipe.errors import (
    ERROR_CODES,
    DatabaseUnavailable,
    InvalidRequest,
    PixelpipeError,
    RateLimited,
)

log = logging.getLogger("pixelpipe.api")
PROBLEM = "application/problem+json"
_OPENAI_PATHS = frozenset({"/v1/images/generations", "/v1/images/edits", "/v1/images/variations"})


def problem_response(exc: PixelpipeError) -> JSONResponse:
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, RateLimited) and retry_after:
        headers["Retry-After"] = str(max(1, round(float(retry_after))))
    return JSONResponse(
        exc.to_problem(), status_code=exc.status, media_type=PROBLEM, headers=headers
    )


# ---- the OpenAI error envelope (the OpenAI-compatible routes) --------------------------------


def is_openai_request(method: str, path: str) -> bool:
    """The OpenAI-compatible surface, whose errors use OpenAI's envelope, not problem+json:
    ``POST /v1/images/{generations,edits,variations}`` and ``/v1/models[/{id}]``."""
    if path == "/v1/models" or path.startswith("/v1/models/"):
        return True
    return path in _OPENAI_PATHS and method.upper() not in ("GET", "HEAD")


_CONTENT_POLICY = ("prompt_blocked", "provider_rejected")
_INVALID = ("invalid_request", "idempotency_key_reused", "provider_invalid_input", "conflict")
_SHAPES: dict[str, tuple[int, str, str]] = {
    "budget_exceeded": (429, "insufficient_quota", "insufficient_quota"),
    "unauthorized": (401, "invalid_request_error", "invalid_api_key"),
    "forbidden": (403, "invalid_request_error", "forbidden"),
    "rate_limited": (429, "requests", "rate_limit_exceeded"),
    "provider_rate_limited": (429, "requests", "rate_limit_exceeded"),
    "timed_out": (504, "server_error", "timeout"),
    "canceled": (409, "invalid_request_error", "canceled"),
    "unsupported_endpoint": (400, "invalid_request_error", "unsupported_endpoint"),
    "input_invalid": (400, "invalid_request_error", "invalid_image"),  # an edit's input image
    # output moderation blocked the image: OpenAI's own code for it (streamed or not)
    "output_blocked": (400, "image_generation_user_error", "moderation_blocked"),
}


def openai_shape(
    code: str, extra: dict[str, Any], status: int | None = None
) -> tuple[int, str, str | None]:
    """(HTTP status, OpenAI error type, OpenAI error code) for one of our error codes
    (``status``: the error's own, for a code the error tree does not register)."""
    if code in _CONTENT_POLICY:
        return 400, "invalid_request_error", "content_policy_violation"
    if code in _INVALID:
        return 400, "invalid_request_error", "invalid_value"
    if code == "not_found":
        not_model = extra.get("field") != "model"
        return 404, "invalid_request_error", "not_found" if not_model else "model_not_found"
    if code in _SHAPES:
        return _SHAPES[code]
    cls = ERROR_CODES.get(code)
    status = cls.status if cls is not None else (status or 500)
    if 400 <= status < 500:  # payload_too_large, method_not_allowed, …
        return status, "invalid_request_error", code
    return (status if status >= 500 else 500), "server_error", code


def openai_error_response(
    code: str,
    message: str,
    extra: dict[str, Any],
    *,
    retry_after: float | None = None,
    status: int | None = None,
) -> JSONResponse:
    """``{"error": {message, type, param, code, pixelpipe_code}}`` — what the OpenAI SDKs read
    (their exception then carries ``message``, ``type``, ``param`` and ``code``)."""
    status, type_, oa_code = openai_shape(code, extra, status)
    field = extra.get("field")
    body = {
        "error": {
            "message": message,
            "type": type_,
            "param": str(field) if field else None,
            "code": oa_code,
            "pixelpipe_code": code,
        }
    }
    headers: dict[str, str] = {}
    if status == 429 and code != "budget_exceeded":
        if retry_after:
            headers["retry-after"] = str(max(1, round(retry_after)))
    elif status < 500 or status == 504:
        # a retry would not help (or, after a wait timeout, would start more images)
        headers["x-should-retry"] = "false"
    return JSONResponse(body, status_code=status, headers=headers)


def openai_error_for(exc: PixelpipeError) -> JSONResponse:
    value = getattr(exc, "retry_after", None)
    retry_after = float(value) if value else None
    return openai_error_response(
        exc.code, exc.detail, exc.extra, retry_after=retry_after, status=exc.status
    )


def error_for(method: str, path: str, exc: PixelpipeError) -> JSONResponse:
    """problem+json, or OpenAI's envelope on the OpenAI-compatible routes."""
    if is_openai_request(method, path):
        return openai_error_for(exc)
    return problem_response(exc)


def _validation_detail(errors: list[Any], body: Any = None) -> tuple[str, list[dict[str, Any]]]:
    items = []
    for err in errors:
        if err.get("type") == "json_invalid":  # FastAPI's json.loads failed at loc[-1]
            pos = next((p for p in reversed(err.get("loc", ())) if isinstance(p, int)), 0)
            reason = str((err.get("ctx") or {}).get("error") or "cannot parse")
            detail = invalid_json_detail(body, pos, reason)
            return detail, [{"field": "body", "message": detail}]
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        field = _printable(".".join(loc) or "body")
        msg = _printable(str(err.get("msg", "invalid")))
        if err.get("type") == "extra_forbidden":
            msg = "unknown field; remove it (see GET /openapi.json for the accepted fields)"
        elif err.get("type") == "string_unicode":  # e.g. a field *name* with a lone surrogate
            msg = (
                "holds text that is not Unicode (a lone UTF-16 surrogate such as \\ud800 is "
                "half of a pair, not a character); send valid UTF-8 text"
            )
        items.append({"field": field, "message": msg})
    summary = "; ".join(f"{i['field']}: {i['message']}" for i in items[:5])
    return summary or "the request body is not valid", items


def _printable(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (a lone surrogate in a field name) escaped."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode()


def _openai_http(exc: HTTPException) -> JSONResponse:
    status = exc.status_code
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    body = {
        "error": {
            "message": str(exc.detail),
            "type": type_,
            "param": None,
            "code": f"http_{status}",
            "pixelpipe_code": f"http_{status}",
        }
    }
    return JSONResponse(body, status_code=status, headers=getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    @app.exception_handler(PixelpipeError)
    async def _pixelpipe(request: Request, exc: PixelpipeError) -> JSONResponse:
        return error_for(request.method, request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, items = _validation_detail(list(exc.errors()), exc.body)
        invalid = InvalidRequest(detail, errors=items)
        return error_for(request.method, request.url.path, invalid)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if is_openai_request(request.method, request.url.path):
            return _openai_http(exc)
        body = {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "detail": str(exc.detail),
            "code": f"http_{exc.status_code}",
        }
        return JSONResponse(
            body,
            status_code=exc.status_code,
            media_type=PROBLEM,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        # locked (SQLite busy past its timeout), unreachable or out of connections: transient,
        # so 503 + Retry-After tells clients to come back (with the same Idempotency-Key)
        log.warning("database error answered 503: %s", type(exc).__name__)
        busy = DatabaseUnavailable(
            "the database is busy or unreachable; retry in a moment", retry_after=1
        )
        response = error_for(request.method, request.url.path, busy)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        if is_openai_request(request.method, request.url.path):
            return openai_error_response("internal_error", "an unexpected error occurred", {})
        body = {
            "type": "about:blank",
            "title": "Internal error",
            "status": 500,
            "detail": "an unexpected error occurred; it has been logged",
            "code": "internal_error",
        }
        return JSONResponse(body, status_code=500, media_type=PROBLEM)
