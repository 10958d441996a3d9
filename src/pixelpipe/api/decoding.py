"""What is wrong with a request body that does not decode, in words a person can act on.

Two things are refused before any stage sees them, on every route (the FastAPI routes, the fast
lane — which hands such bodies to the routes — and the OpenAI-compatible endpoint):

* a body that is not JSON: ``request body is not valid JSON: Expecting ',' delimiter at line 1,
  column 17`` (``field: "body"``), the line and column counted as editors count them;
* a JSON string holding a lone UTF-16 surrogate (``"\\ud800"``): valid JSON syntax, but not a
  character — it cannot be stored, hashed or encoded as UTF-8. The answer names the field
  (:func:`pixelpipe.intake.lone_surrogate` words the message).
"""

from __future__ import annotations

import email.message
import functools
import json
from typing import Any

from pixelpipe.errors import InvalidRequest
from pixelpipe.intake import lone_surrogate

NOT_JSON = "request body is not valid JSON"


def invalid_json_detail(doc: str | bytes | None, pos: int, reason: str) -> str:
    """``request body is not valid JSON: <reason> at line L, column C`` (1-based, like json's)."""
    if isinstance(doc, bytes):
        doc = doc.decode("utf-8", "replace")
    if not isinstance(doc, str) or not 0 <= pos <= len(doc):
        return f"{NOT_JSON}: {reason} at character {pos + 1}"
    line = doc.count("\n", 0, pos) + 1
    column = pos - doc.rfind("\n", 0, pos)
    return f"{NOT_JSON}: {reason} at line {line}, column {column}"


def body_error(raw: bytes) -> InvalidRequest | None:
    """Why ``raw`` is not a usable JSON document (syntax, encoding or a lone surrogate), or None
    when it is one (then what is wrong is its content, for the model's validation to say)."""
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        return InvalidRequest(invalid_json_detail(exc.doc, exc.pos, exc.msg), field="body")
    except UnicodeDecodeError as exc:
        detail = (
            f"request body is not UTF-8 text: byte {exc.start + 1} ({raw[exc.start]:#04x}) "
            "cannot start or continue a character; send JSON encoded as UTF-8"
        )
        return InvalidRequest(detail, field="body")
    found = _first_surrogate(doc, ())
    if found is None:
        return None
    field, message = found
    return InvalidRequest(f"{field}: {message}", field=field)


def _first_surrogate(value: Any, path: tuple[str, ...]) -> tuple[str, str] | None:
    if isinstance(value, str):
        message = lone_surrogate(value)
        return (".".join(path) or "body", message) if message else None
    items: Any = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    for key, item in items:
        if (bad := lone_surrogate(key)) is not None:  # never echo the name itself: not UTF-8
            return ".".join(path) or "body", f"a field name {bad}"
        if (found := _first_surrogate(item, (*path, key))) is not None:
            return found
    return None


@functools.lru_cache(maxsize=64)
def reads_json(content_type: str) -> bool:
    """Whether FastAPI parses a body sent with this (non-empty) Content-Type as JSON: its own
    rule (``fastapi.routing.get_request_handler``), once per distinct header value."""
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def require_json_body(content_type: str | None) -> None:
    """A body the OpenAI endpoint reads must say it is JSON (the SDKs send application/json). A
    browser's cross-site form or ``text/plain`` post cannot, so it cannot start a paid job on a
    server whose API is open to local callers."""
    if content_type and reads_json(content_type):
        return
    sent = f"got {content_type!r}" if content_type else "none was sent"
    raise InvalidRequest(f"send the request body as JSON, Content-Type: application/json ({sent})")
