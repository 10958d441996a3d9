"""What AUTOMATIC1111 / Forge / SD.Next answer, read: the ``info`` of a txt2img answer, the
checkpoint that really ran, and its error bodies (sources in ``pixelpipe/fakes/a1111.py``).

- ``info`` is a JSON *string* (``Processed.js()``); ``sd_model_name`` is the checkpoint's file name
  without directory and extension, ``sd_model_hash`` its short hash (10 hex digits of the sha256;
  8 for old legacy hashes).
- A checkpoint named in ``override_settings`` that the server does not have is **not an error**:
  it prints "… not found; loading fallback …" and runs another one. :func:`checkpoint_ran` tells
  whether the one asked for is the one in ``info``.
- Errors: A1111's handler answers ``{"error": <exception class>, "detail": <HTTPException
  detail or "">, "body": "", "errors": str(exception)}`` (an OOM is a 500 ``OutOfMemoryError``
  "CUDA out of memory…"); validation is FastAPI 0.94's 422 ``{"detail": [{loc, msg, type}]}``;
  unknown paths 404 ``{"detail": "Not Found"}``. Mapped like every provider: 429 →
  ProviderRateLimited, 401/403 → ProviderAuthError, 5xx → ProviderUnavailable (another server
  may have the memory), other 4xx → ProviderInvalidInput, with the server's message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx

from pixelpipe.errors import (
    ProviderError,
    ProviderInvalidInput,
    ProviderRateLimited,
    ProviderUnavailable,
)
from pixelpipe.providers.http import ProviderIdentity, auth_error, body_message, parse_retry_after

_TITLE = re.compile(r"^(?P<name>.*?)\s*\[(?P<hash>[0-9a-fA-F]+)\]$")
_HASH = re.compile(r"^[0-9a-fA-F]{8,64}$")
_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf")


def parse_info(value: Any) -> dict[str, Any]:
    """The ``info`` of a txt2img answer as a dict (``{"raw": text}`` when it is not JSON)."""
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(str(value or "{}"))
    except ValueError:
        return {"raw": str(value)}
    return parsed if isinstance(parsed, dict) else {"raw": str(value)}


def checkpoint_ran(wanted: str, info: dict[str, Any]) -> bool:
    """Whether the checkpoint named ``wanted`` (a title, file name, model name or hash) is the
    one ``info`` says ran. An ``info`` naming no checkpoint (some forks) cannot be checked: True."""
    name, short = info.get("sd_model_name"), info.get("sd_model_hash")
    if not name and not short:
        return True
    wanted = wanted.strip()
    if (m := _TITLE.match(wanted)) is not None:
        if short and _same_hash(m["hash"], str(short)):
            return True
        wanted = m["name"]
    if short and _HASH.match(wanted) and _same_hash(wanted, str(short)):
        return True
    return bool(name) and str(name) in _names(wanted)


def _same_hash(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a.startswith(b) or b.startswith(a)


def _names(wanted: str) -> set[str]:
    """What ``sd_model_name`` may say for a checkpoint named ``wanted``: the file name without
    extension, with or without its directories (``a/b.safetensors`` → ``b``, ``a_b``)."""
    stem = wanted
    for ext in _EXTENSIONS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    flat = stem.replace("\\", "/")
    return {stem, flat.rsplit("/", 1)[-1], flat.replace("/", "_")}


def error_message(body: Any) -> str:
    """The human message of an A1111 error body, or of FastAPI's."""
    if isinstance(body, dict) and isinstance(body.get("error"), str) and "errors" in body:
        detail = str(body.get("detail") or "").strip()
        return detail or f"{body['error']}: {body.get('errors') or ''}".rstrip(": ")
    return body_message(body)


def error_from_response(
    resp: httpx.Response, ident: ProviderIdentity, redact: Callable[[str], str]
) -> ProviderError:
    """A non-2xx answer in the error tree (``redact``: the provider's secret filter)."""
    try:
        body: Any = resp.json()
    except ValueError:
        body = resp.text[:500]
    status = resp.status_code
    message = redact(error_message(body) or resp.reason_phrase or f"HTTP {status}")
    where = f"{ident.name} answered HTTP {status}: {message}"
    if status == 429:  # a proxy's: A1111 has no rate limit
        return ProviderRateLimited(
            where, retry_after=parse_retry_after(resp.headers), provider=ident.name
        )
    if status in (401, 403):
        return auth_error(ident, status, message)
    if status >= 500 or status in (408, 409, 425):
        return ProviderUnavailable(where, provider=ident.name, billable=False)
    return ProviderInvalidInput(where, provider=ident.name)
