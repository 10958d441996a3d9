"""A protocol-faithful fake of OpenAI's Images API (providers.md §3 and the §5 checklist).

Base URL: ``http://HOST:PORT/v1`` (as for the official client). ``POST /v1/images/generations`` is
synchronous (it takes ``latency_s``): GPT image models answer ``b64_json`` with ``usage``; DALL-E
answers ``url`` (served from ``/files``, expiring) or ``b64_json``, dall-e-3 with
``revised_prompt``. ``stream=true`` (GPT image models) answers OpenAI's server-sent events with
``partial_images`` partials (``openai_stream.py``). ``POST /v1/images/edits`` takes multipart as
the real API does (``openai_edits.py``) and answers the same way, with the input images' tokens
in ``usage``.
Errors use OpenAI's ``{"error": {message, type, param, code}}`` envelope.
"""

from __future__ import annotations

import base64
import secrets
import time
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
from pixelpipe.fakes.openai_edits import MAX_IMAGE_BYTES, EditForm, check_edit, image_tokens
from pixelpipe.fakes.openai_multipart import NotMultipart, parse_form
from pixelpipe.fakes.openai_rules import (
    MODELS,
    InvalidRequest,
    ModelRules,
    check_choice,
    check_prompt,
    dims,
    error_response,
    request_headers,
    usage,
)
from pixelpipe.fakes.openai_stream import stream_partials, stream_response
from pixelpipe.fakes.render import render

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
MODERATION_GPT = (
    "Your request was rejected by the safety system. If you believe this is an error, contact us "
    "at help.openai.com and include the request ID."
)
MODERATION_DALLE = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text "
    "that is not allowed by our safety system."
)


class FakeOpenAI(FakeServer):
    """The fake. ``api_key=None`` accepts any bearer key; ``app`` is the ASGI application."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        behaviour: Behaviour | None = None,
        public_url: str | None = None,
        max_image_bytes: int = MAX_IMAGE_BYTES,
    ) -> None:
        super().__init__(behaviour, public_url)
        self.api_key = api_key
        self.max_image_bytes = max_image_bytes  # per edit input (the real API: < 50 MB)
        self.edits: list[EditForm] = []  # every accepted edit, as the fake read it (for tests)
        routes = [
            Route("/v1/images/generations", self.generate, methods=["POST"]),
            Route("/v1/images/edits", self.edit, methods=["POST"]),
        ]
        self.app = Starlette(routes=[*routes, *self.core.control_routes()], lifespan=self._lifespan)

    async def generate(self, request: Request) -> Response:
        if (denied := await self._gate(request)) is not None:
            return denied
        try:
            body = await _json(request)
            model, rules = _validate(body)
            partials = stream_partials(body)
        except InvalidRequest as exc:
            return error_response(400, str(exc), "invalid_request_error", exc.param, exc.code)
        self.core.stats.creates[model] += 1
        if outcome_for(str(body["prompt"]), self.behaviour) != "ok":
            return _moderation(rules)
        if partials is not None:  # stream=true: the events are spread over the latency
            answer = self._images(request, body, model, rules)
            sleep = self.core.background.sleep
            return stream_response(answer, partials, self.behaviour.latency_s, sleep)
        await self.core.background.sleep(self.behaviour.latency_s)
        data = self._images(request, body, model, rules)
        return JSONResponse(data, headers=request_headers())

    async def edit(self, request: Request) -> Response:
        """``POST /v1/images/edits`` (multipart): checked like the real API, then answered like a
        generation whose picture depends on the input images."""
        if (denied := await self._gate(request)) is not None:
            return denied
        try:
            parts = parse_form(request.headers.get("content-type", ""), await request.body())
            form = check_edit(parts, self.max_image_bytes)
        except NotMultipart as exc:
            message = f"Invalid Content-Type header ({exc}), expected multipart/form-data."
            return error_response(400, message, "invalid_request_error")
        except InvalidRequest as exc:
            return error_response(400, str(exc), "invalid_request_error", exc.param, exc.code)
        self.edits.append(form)
        self.core.stats.creates[form.model] += 1
        if outcome_for(str(form.body["prompt"]), self.behaviour) != "ok":
            return _moderation(form.rules)
        await self.core.background.sleep(self.behaviour.latency_s)
        fidelity = str(form.body.get("input_fidelity", "low"))
        tokens = image_tokens(form.images, fidelity)
        data = self._images(request, form.body, form.model, form.rules, form.seed, tokens)
        return JSONResponse(data, headers=request_headers())

    def _images(
        self,
        request: Request,
        body: dict[str, Any],
        model: str,
        rules: ModelRules,
        seed: int = 0,  # OpenAI takes no seed: same prompt, same picture (deterministic fake)
        input_image_tokens: int = 0,
    ) -> dict[str, Any]:
        size = body.get("size") or ("auto" if rules.gpt else "1024x1024")
        width, height = dims(str(size))
        fmt = str(body.get("output_format", "png")) if rules.gpt else "png"
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
            data["usage"] = usage(
                str(body["prompt"]), quality, width, height, len(items), input_image_tokens
            )
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
            return error_response(401, message, "invalid_request_error", None, "invalid_api_key")
        fault = await self.core.fault("generate")
        if fault == "rate_limit":
            return self._rate_limited()
        if fault == "error":
            message = "The server had an error while processing your request. Sorry about that!"
            return error_response(self.behaviour.error_status, message, "server_error")
        if fault == "garbage":
            return self.core.garbage_response()
        return None

    def _rate_limited(self) -> Response:
        message = (
            "Rate limit exceeded for images per minute in organization org-fake. Limit: 5/1min."
        )
        resp = error_response(429, message, "requests", None, "rate_limit_exceeded")
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
    check_prompt(body.get("prompt"), rules)
    check_choice(body, "size", rules.sizes)
    check_choice(body, "quality", rules.qualities)
    check_choice(body, "response_format", ("url", "b64_json"))
    check_choice(body, "output_format", ("png", "jpeg", "webp"))
    n = body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= rules.max_n:
        message = "You must provide n=1 for this model." if rules.max_n == 1 else "n must be 1..10"
        raise InvalidRequest(message, "n", "invalid_value")
    return model, rules


def _moderation(rules: ModelRules) -> Response:
    if rules.gpt:
        return error_response(
            400, MODERATION_GPT, "image_generation_user_error", None, "moderation_blocked"
        )
    return error_response(
        400, MODERATION_DALLE, "invalid_request_error", None, "content_policy_violation"
    )
