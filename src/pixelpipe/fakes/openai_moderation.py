"""A protocol-faithful fake of OpenAI's moderation API (``POST /v1/moderations``).

Base URL: ``http://HOST:PORT/v1`` (``PIXELPIPE_MODERATION_URL``; under ``pixelpipe
fake-providers`` at ``BASE/openai_moderation/v1``). The request is OpenAI's: ``model``
(``omni-moderation-latest``, ``omni-moderation-2024-09-26``, ``text-moderation-latest``) and
``input`` — a string, a list of strings, or a list of ``{"type": "text", "text"}`` /
``{"type": "image_url", "image_url": {"url"}}`` items (images as ``data:`` URIs here; the real API
also fetches http URLs). The answer is OpenAI's: ``{"id": "modr-…", "model", "results": [{
"flagged", "categories", "category_scores", "category_applied_input_types"}]}`` — one result per
string for text lists, one combined result for multi-modal input, as the real API does. Errors
use OpenAI's ``{"error": {message, type, param, code}}`` envelope (401 without a bearer key,
400 for a bad body, 429 ``rate_limit_exceeded``, 5xx).

Verdicts follow :mod:`pixelpipe.moderation.markers` (``[mod:<category>]`` in text, magenta
pictures), plus whatever ``POST /_control`` sets: ``image_scores`` (scores given to every image,
e.g. ``{"sexual": 0.97}``), ``text_scores`` likewise, ``error_next``/``error_status``,
``rate_limit_next``, ``hang_next``/``hang_s`` (hold the call: client timeouts), ``reset``.
``GET /_stats`` counts calls per input type.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixelpipe.fakes.openai_rules import error_response
from pixelpipe.moderation.markers import (
    FLAG_AT,
    IMAGE_CATEGORIES,
    TEXT_CATEGORIES,
    image_scores,
    text_scores,
)

MODELS = ("omni-moderation-latest", "omni-moderation-2024-09-26", "text-moderation-latest")


@dataclass
class ModerationBehaviour:
    text_scores: dict[str, float] = field(default_factory=dict)
    image_scores: dict[str, float] = field(default_factory=dict)
    error_next: int = 0
    error_status: int = 500
    rate_limit_next: int = 0
    hang_next: int = 0
    hang_s: float = 30.0


class OpenAIModerationFake:
    """The fake's state and its Starlette app (``.app``), mounted at ``/v1``."""

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.behaviour = ModerationBehaviour()
        self.stats: Counter[str] = Counter()
        self.app = Starlette(
            routes=[
                Route("/v1/moderations", self._moderate, methods=["POST"]),
                Route("/_control", self._control, methods=["GET", "POST"]),
                Route("/_stats", self._stats, methods=["GET"]),
            ]
        )

    async def aclose(self) -> None:
        return None

    async def _control(self, request: Request) -> Response:
        if request.method == "POST":
            changes = await request.json()
            if changes.pop("reset", False):
                self.behaviour = ModerationBehaviour()
                self.stats.clear()
            known = {f.name for f in dataclasses.fields(ModerationBehaviour)}
            unknown = set(changes) - known
            if unknown:
                return JSONResponse({"error": f"unknown behaviour {sorted(unknown)}"}, 400)
            for name, value in changes.items():
                setattr(self.behaviour, name, value)
        return JSONResponse(dataclasses.asdict(self.behaviour))

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(dict(self.stats))

    async def _moderate(self, request: Request) -> Response:
        self.stats["calls"] += 1
        refused = self._auth(request) or await self._injected()
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _invalid("We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return _invalid("The body must be a JSON object.")
        model = body.get("model", "omni-moderation-latest")
        if model not in MODELS:
            return _invalid(f"The model `{model}` does not exist.", "model", "model_not_found")
        try:
            items = _items(body.get("input"))
        except ValueError as exc:
            return _invalid(str(exc), "input")
        if model.startswith("text-") and any(kind == "image" for kind, _ in items):
            return _invalid(f"The model `{model}` does not support image inputs.", "input")
        self.stats.update(kind for kind, _ in items)
        results = self._results(items)
        if isinstance(results, Response):
            return results
        return JSONResponse(
            {"id": "modr-" + secrets.token_hex(12), "model": model, "results": results}
        )

    def _auth(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not token or (self.api_key is not None and token != self.api_key):
            message = "Incorrect API key provided." if token else "You didn't provide an API key."
            return error_response(401, message, "invalid_request_error", None, "invalid_api_key")
        return None

    async def _injected(self) -> Response | None:
        b = self.behaviour
        if b.hang_next > 0:
            b.hang_next -= 1
            await asyncio.sleep(b.hang_s)
        if b.rate_limit_next > 0:
            b.rate_limit_next -= 1
            response = error_response(
                429, "Rate limit reached for requests", "requests", None, "rate_limit_exceeded"
            )
            response.headers["retry-after"] = "1"
            return response
        if b.error_next > 0:
            b.error_next -= 1
            return error_response(
                b.error_status, "The server had an error processing your request.", "server_error"
            )
        return None

    def _results(self, items: list[tuple[str, str]]) -> list[dict[str, Any]] | Response:
        scored: list[tuple[str, dict[str, float]]] = []
        for kind, value in items:
            if kind == "text":
                scored.append((kind, {**text_scores(value), **self.behaviour.text_scores}))
                continue
            try:
                data = _data_uri(value)
                scores = {**image_scores(data), **self.behaviour.image_scores}
            except ValueError as exc:
                return _invalid(f"Invalid image: {exc}", "input", "invalid_image")
            scored.append((kind, scores))
        if all(kind == "text" for kind, _ in items) and len(items) > 1:
            return [_result([s]) for s in scored]  # a list of strings: one result each
        return [_result(scored)]


def _items(value: Any) -> list[tuple[str, str]]:
    """(``text`` | ``image``, text or URL) for each input, validated as the real API does."""
    if isinstance(value, str):
        return [("text", value)]
    if not isinstance(value, list) or not value:
        raise ValueError("'input' must be a string, an array of strings or an array of objects")
    items: list[tuple[str, str]] = []
    for item in value:
        if isinstance(item, str):
            items.append(("text", item))
        elif isinstance(item, dict) and item.get("type") == "text":
            items.append(("text", str(item.get("text") or "")))
        elif isinstance(item, dict) and item.get("type") == "image_url":
            url = (item.get("image_url") or {}).get("url")
            if not isinstance(url, str):
                raise ValueError("'image_url.url' is required")
            items.append(("image", url))
        else:
            raise ValueError("each input item must be {'type': 'text'} or {'type': 'image_url'}")
    if sum(kind == "image" for kind, _ in items) > 1:
        raise ValueError("at most one image per request")
    return items


def _data_uri(url: str) -> bytes:
    if not url.startswith("data:") or ";base64," not in url:
        raise ValueError("this fake takes images as data: URIs only")
    try:
        return base64.b64decode(url.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the data URI is not valid base64") from None


def _result(scored: list[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    scores = dict.fromkeys(TEXT_CATEGORIES, 0.0)
    applied: dict[str, list[str]] = {c: [] for c in TEXT_CATEGORIES}
    for kind, own in scored:
        for category, score in own.items():
            if category not in scores or (kind == "image" and category not in IMAGE_CATEGORIES):
                continue
            scores[category] = max(scores[category], score)
            if kind not in applied[category]:
                applied[category].append(kind)
    categories = {c: s >= FLAG_AT for c, s in scores.items()}
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }


def _invalid(message: str, param: str | None = None, code: str | None = None) -> Response:
    return error_response(400, message, "invalid_request_error", param, code)
