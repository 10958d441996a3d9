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
from pixelpipe.errors import DatabaseUnavailable, InvalidRequest, PixelpipeError, RateLimited

log = logging.getLogger("pixelpipe.api")
PROBLEM = "application/problem+json"


def problem_response(exc: PixelpipeError) -> JSONResponse:
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, RateLimited) and retry_after:
        headers["Retry-After"] = str(max(1, round(float(retry_after))))
    return JSONResponse(
        exc.to_problem(), status_code=exc.status, media_type=PROBLEM, headers=headers
    )


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


def install(app: FastAPI) -> None:
    @app.exception_handler(PixelpipeError)
    async def _pixelpipe(_: Request, exc: PixelpipeError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, items = _validation_detail(list(exc.errors()), exc.body)
        return problem_response(InvalidRequest(detail, errors=items))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
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
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        # locked (SQLite busy past its timeout), unreachable or out of connections: transient,
        # so 503 + Retry-After tells clients to come back (with the same Idempotency-Key)
        log.warning("database error answered 503: %s", type(exc).__name__)
        busy = DatabaseUnavailable(
            "the database is busy or unreachable; retry in a moment", retry_after=1
        )
        response = problem_response(busy)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        body = {
            "type": "about:blank",
            "title": "Internal error",
            "status": 500,
            "detail": "an unexpected error occurred; it has been logged",
            "code": "internal_error",
        }
        return JSONResponse(body, status_code=500, media_type=PROBLEM)
