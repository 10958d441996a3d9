"""A protocol-faithful fake of OpenAI's Images API (providers.md §3 and the §5 checklist).

Base URL: ``http://HOST:PORT/v1`` (as for the official client). ``POST /v1/images/generations`` is
synchronous (it takes ``latency_s``): GPT image models answer ``b64_json`` with ``usage``; DALL-E
answers ``url`` (served from ``/files``, expiring) or ``b64_json``, dall-e-3 with
``revised_prompt``. Errors use OpenAI's ``{"error": {message, type, param, code}}`` envelope.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixelpipe.fakes.common import (
    CONTENT_TYPES,
    Behaviour,
    FakeServer,
    base_url,
    hostile_bytes,
    outcome_for,
)
from pixelpipe.fakes.render import render


@dataclass(frozen=True)
class ModelRules:
    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    max_n: int
    max_prompt: int
    gpt: bool


_GPT = ModelRules(
    ("1024x1024", "1536x1024", "1024x1536", "auto"),
    ("low", "medium", "high", "auto"),
    10,
    32000,
    True,
)
MODELS = {
    "dall-e-2": ModelRules(("256x256", "512x512", "1024x1024"), ("standard",), 10, 1000, False),
    "dall-e-3": ModelRules(
        ("1024x1024", "1792x1024", "1024x1792"), ("standard", "hd"), 1, 4000, False
    ),
    "gpt-image-1": _GPT,
    "gpt-image-1-mini": _GPT,
}
_COMMON = {"model", "prompt", "n", "size", "quality", "user"}
_GPT_ONLY = {
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "stream",
    "partial_images",
}
_DALLE_ONLY = {"response_format", "style"}
_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}
MODERATION_GPT = (
    "Your request was rejected by the safety system. If you believe this is an error, contact us "
    "at help.openai.com and include the request ID."
)
MODERATION_DALLE = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text "
    "that is not allowed by our safety system."
)


class InvalidRequest(Exception):
    def __init__(self, message: str, param: str | None, code: str) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def _error(
    status: int, message: str, kind: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=_request_headers())


def _request_headers() -> dict[str, str]:
    return {
        "x-request-id": "req_" + secrets.token_hex(16),
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
    }


class FakeOpenAI(FakeServer):
    """The fake. ``api_key=None`` accepts any bearer key; ``app`` is the ASGI application."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        behaviour: Behaviour | None = None,
        public_url: str | None = None,
    ) -> None:
        super().__init__(behaviour, public_url)
        self.api_key = api_key
        routes = [Route("/v1/images/generations", self.generate, methods=["POST"])]
        self.app = Starlette(routes=[*routes, *self.core.control_routes()], lifespan=self._lifespan)

    async def generate(self, request: Request) -> Response:
        if (denied := await self._gate(request)) is not None:
            return denied
        try:
            body = await _json(request)
            model, rules = _validate(body)
        except InvalidRequest as exc:
            return _error(400, str(exc), "invalid_request_error", exc.param, exc.code)
        self.core.stats.creates[model] += 1
        if outcome_for(str(body["prompt"]), self.behaviour) != "ok":
            return _moderation(rules)
        await self.core.background.sleep(self.behaviour.latency_s)
        data = self._images(request, body, model, rules)
        return JSONResponse(data, headers=_request_headers())

    def _images(
        self, request: Request, body: dict[str, Any], model: str, rules: ModelRules
    ) -> dict[str, Any]:
        size = body.get("size") or ("auto" if rules.gpt else "1024x1024")
        width, height = _dims(str(size))
        fmt = str(body.get("output_format", "png")) if rules.gpt else "png"
        seed = 0  # OpenAI takes no seed: same prompt, same picture (deterministic fake)
        items = [
            self._item(request, body, rules, seed + i, (width, height), fmt)
            for i in range(int(body.get("n", 1)))
        ]
        data: dict[str, Any] = {"created": int(time.time()), "data": items}
        if rules.gpt:
            quality = body.get("quality", "auto")
            quality = "medium" if quality == "auto" else quality
            data |= {
                "background": "opaque",
                "output_format": fmt,
                "quality": quality,
                "size": f"{width}x{height}",
            }
            data["usage"] = _usage(str(body["prompt"]), quality, width, height, len(items))
        return data

    def _item(
        self,
        request: Request,
        body: dict[str, Any],
        rules: ModelRules,
        seed: int,
        size: tuple[int, int],
        fmt: str,
    ) -> dict[str, Any]:
        image = render(str(body["prompt"]), seed, size[0], size[1], fmt)
        item: dict[str, Any] = {}
        if rules.gpt or body.get("response_format") == "b64_json":
            inline = hostile_bytes(self.behaviour.output_kind, image)
            item["b64_json"] = base64.b64encode(inline).decode()
        else:
            name = f"img-{secrets.token_hex(8)}.{fmt}"
            self.core.files.put(name, image, CONTENT_TYPES[fmt])
            base = base_url(request, self.core.public_url)
            item["url"] = self.core.output_url(base, f"{base}/files/{name}")
        if body.get("model") == "dall-e-3":
            item["revised_prompt"] = f"A detailed, high-quality image of {body['prompt']}"
        return item

    async def _gate(self, request: Request) -> Response | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key or (self.api_key is not None and key != self.api_key):
            masked = f"{key[:3]}*****{key[-4:]}" if len(key) > 8 else "*****"
            message = f"Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com/account/api-keys."
            return _error(401, message, "invalid_request_error", None, "invalid_api_key")
        fault = await self.core.fault("generate")
        if fault == "rate_limit":
            return self._rate_limited()
        if fault == "error":
            message = "The server had an error while processing your request. Sorry about that!"
            return _error(self.behaviour.error_status, message, "server_error")
        if fault == "garbage":
            return self.core.garbage_response()
        return None

    def _rate_limited(self) -> Response:
        message = (
            "Rate limit exceeded for images per minute in organization org-fake. Limit: 5/1min."
        )
        resp = _error(429, message, "requests", None, "rate_limit_exceeded")
        resp.headers.update(self.core.rate_limit_headers())
        value = self.behaviour.retry_after
        if value.isdigit():
            resp.headers["retry-after-ms"] = str(int(value) * 1000)
        resp.headers["x-ratelimit-remaining-requests"] = "0"
        return resp


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InvalidRequest(
            "We could not parse the JSON body of your request.", None, "invalid_json"
        )
    return body


def _validate(body: dict[str, Any]) -> tuple[str, ModelRules]:
    model = str(body.get("model", "dall-e-2"))
    rules = MODELS.get(model)
    if rules is None:
        raise InvalidRequest(
            f"Invalid value: '{model}'. Supported values are: {', '.join(MODELS)}.",
            "model",
            "invalid_value",
        )
    allowed = _COMMON | (_GPT_ONLY if rules.gpt else _DALLE_ONLY)
    for name in body:
        if name not in allowed:
            raise InvalidRequest(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    _check_prompt(body.get("prompt"), rules)
    _check_choice(body, "size", rules.sizes)
    _check_choice(body, "quality", rules.qualities)
    _check_choice(body, "response_format", ("url", "b64_json"))
    _check_choice(body, "output_format", ("png", "jpeg", "webp"))
    n = body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= rules.max_n:
        message = "You must provide n=1 for this model." if rules.max_n == 1 else "n must be 1..10"
        raise InvalidRequest(message, "n", "invalid_value")
    return model, rules


def _check_prompt(prompt: Any, rules: ModelRules) -> None:
    if not isinstance(prompt, str) or not prompt:
        raise InvalidRequest(
            "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
        )
    if len(prompt) > rules.max_prompt:
        message = (
            f"Invalid 'prompt': string too long. Expected a maximum length of {rules.max_prompt}."
        )
        raise InvalidRequest(message, "prompt", "string_above_max_length")


def _check_choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    if name in body and body[name] not in allowed:
        message = f"Invalid value: '{body[name]}'. Supported values are: {', '.join(allowed)}."
        raise InvalidRequest(message, name, "invalid_value")


def _moderation(rules: ModelRules) -> Response:
    if rules.gpt:
        return _error(
            400, MODERATION_GPT, "image_generation_user_error", None, "moderation_blocked"
        )
    return _error(400, MODERATION_DALLE, "invalid_request_error", None, "content_policy_violation")


def _dims(size: str) -> tuple[int, int]:
    if size == "auto":
        return 1024, 1024
    w, _, h = size.partition("x")
    return int(w), int(h)


def _usage(prompt: str, quality: str, width: int, height: int, n: int) -> dict[str, Any]:
    square = width == height
    output = _OUTPUT_TOKENS.get(quality, 1056) * (1 if square else 3) // (1 if square else 2) * n
    text = max(1, len(prompt.split()))
    return {
        "input_tokens": text,
        "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
        "output_tokens": output,
        "total_tokens": text + output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
    }
