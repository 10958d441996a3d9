"""``/openapi.json`` as the server answers: the error responses every operation can give.

FastAPI documents what a route declares; the layers around the routes answer more. This module
completes the generated document (checked by schemathesis's response-conformance checks in
``tests/security/test_openapi_conformance.py``):

* every error of the native API is ``application/problem+json`` (:data:`PROBLEM_SCHEMA`), including
  FastAPI's 422, which it documents as ``application/json``;
* every error of the OpenAI-compatible routes is OpenAI's envelope in ``application/json``;
* an operation with a body can answer 400 (the body cannot be parsed), 413 (too large, before it is
  read) and 422 (invalid);
* an operation behind API keys can answer 401, 403 and 429 (the authentication layer);
* an operation with a path parameter can answer 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from pixelpipe.api.problems import PROBLEM, is_openai_request
from pixelpipe.security.auth import required_scope

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem document; `code` is pixelpipe's stable error code.",
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "additionalProperties": True,
}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_AUTH = {
    "401": "No valid API key (`WWW-Authenticate: Bearer`); only when API keys are on",
    "403": "The API key lacks the scope this route needs",
    "429": "The API key's rate limit (`Retry-After`)",
}
_BODY = {
    "400": "The body cannot be parsed (not JSON, or not UTF-8)",
    "413": "The body is larger than the limit (refused before it is read whole)",
    "422": "The body is not valid (the problem lists each field)",
}


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = complete(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                _complete_operation(item[method], method.upper(), path)
    return schema


def _complete_operation(op: dict[str, Any], method: str, path: str) -> None:
    openai = is_openai_request(method, path)
    content = _openai_content() if openai else _problem_content()
    responses: dict[str, Any] = op.setdefault("responses", {})
    extra: dict[str, str] = {}
    if required_scope(method, path) is not None:
        extra.update(_AUTH)
    if "requestBody" in op:
        extra.update(_BODY)
    if "{" in path:
        extra["404"] = "Not found"
    for status, description in extra.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status[:1] in ("4", "5"):
            response["content"] = content


def _problem_content() -> dict[str, Any]:
    return {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _openai_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}
