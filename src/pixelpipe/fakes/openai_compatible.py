"""A protocol-faithful fake of an OpenAI-compatible image server (SGLang diffusion, vLLM-Omni).

Base URL: ``http://HOST:PORT/v1``. One process serves **one model** (``vllm serve <model> --omni``,
``sglang serve --model-path``). Facts, from the projects' source: vllm-project/vllm-omni
``vllm_omni/entrypoints/openai/api_server.py`` (commit be81443, 2025-12-28: ``generate_images``
l.544-683, model mismatch l.610-617, ``ValueError`` → 400 l.674-676, failure → 500 l.677-681),
``protocol/images.py`` (``ImageGenerationRequest``, ``n`` 1-10 l.38, ``validate_response_format``),
``image_api_utils.py`` ``parse_size``; vLLM ``entrypoints/openai/api_server.py`` ``build_app``
exception handlers and ``server_utils.py`` ``AuthenticationMiddleware``; sgl-project/sglang
``python/sglang/multimodal_gen/runtime/entrypoints/http_server.py`` (``/health``, no custom
exception handlers), ``openai/image_api.py`` (``generations``, ``_build_image_response_kwargs``),
``openai/common_api.py`` (``/v1/models``, ``/v1/models/{model}``), ``openai/protocol.py``.

- ``POST /v1/images/generations`` (JSON) with the OpenAI fields plus the extensions ``seed``,
  ``negative_prompt``, ``num_inference_steps``, ``guidance_scale``, ``true_cfg_scale``; it
  answers ``{"created", "data": [{"b64_json", …}]}``, PNG. There is no hosted ``url``:
  vLLM-Omni refuses ``response_format: "url"`` in validation (``protocol/images.py``
  ``validate_response_format``; its default is ``b64_json``); SGLang's default *is* ``url`` and,
  without cloud storage, answers 400 "response_format='url' requires cloud storage to be
  configured." (``image_api.py`` ``_build_image_response_kwargs``) *after* generating, so a
  client must send ``b64_json``. vLLM-Omni's ``file`` (raw PNG bytes) is not faked. ``n``
  images, seeds ``seed + i`` (no seed: random).
- **Another model name is not an error**: vLLM-Omni logs "Model mismatch … Using server model."
  and generates with its own model (``entrypoints/openai/api_server.py`` ``generate_images``);
  SGLang ignores ``model``. (vllm-omni's early standalone image server answered 400 "Model
  mismatch: …": ``reject_other_model=True``.) ``GET /v1/models`` lists the one model;
  SGLang's ``GET /v1/models/{other}`` is a 404 ``model_not_found`` in OpenAI's envelope
  (``common_api.py``).
- Errors differ by server (``flavour``; see ``openai_compatible_schema.py``): SGLang answers
  FastAPI's ``{"detail": …}`` (422 ``{"detail": [{type, loc, msg, input…}]}`` for validation)
  and a failed generation, an uncaught ``RuntimeError``, as a **plain-text** 500
  ``Internal Server Error``; vLLM-Omni wraps everything in ``{"error": {message, type, param,
  code}}`` (validation → 400), and a failed generation is a 500 "Image generation failed: …".
  Unknown paths are FastAPI's 404 ``{"detail": "Not Found"}`` on both.
- ``POST /v1/images/edits`` (multipart: repeated ``image`` parts): an edit, derived from the
  inputs; facts in ``openai_compatible_edits.py``.
- ``GET /health``: SGLang ``{"status": "ok"}``, vLLM 200 with an empty body. With ``--api-key``
  every ``/v1`` path wants ``Authorization: Bearer <key>`` (scheme in any case), else 401
  ``{"error": "Unauthorized"}`` (vLLM's ``AuthenticationMiddleware``, SGLang's api-key middleware);
  ``/health`` stays open.
- The GPU runs one generation at a time: concurrent requests wait in the server (vllm-omni
  #1080 is about what happens to the waiting one).

Behaviours (:class:`OpenAICompatibleBehaviour`): ``latency_s`` per generation, ``fail_next`` /
``oom_next`` (the generation fails: 500 in the flavour's shape), ``crash_next`` (the server dies
mid-generation: the connection closes unanswered, queued requests too, down for
``crash_restart_s``), ``reject_other_model``; the shared ``error_next`` (with ``error_status``,
e.g. 503 from a proxy or a restarting pod), ``rate_limit_next``, ``hang_next`` and
``garbage_next`` apply to generations, in the flavour's error shape.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pixelpipe.fakes import openai_compatible_schema as schema
from pixelpipe.fakes.common import Behaviour, FakeServer
from pixelpipe.fakes.crash import Crashed, CrashSwitch, Dropped, drops_connections
from pixelpipe.fakes.openai_compatible_edits import (
    SGLANG_DEFAULT_SEED,
    BadImage,
    EditForm,
    derived,
    read_form,
)
from pixelpipe.fakes.openai_multipart import NotMultipart, parse_form
from pixelpipe.fakes.render import render

OOM_MESSAGE = (
    "CUDA out of memory. Tried to allocate 4.00 GiB. GPU 0 has a total capacity of 79.11 GiB of "
    "which 1.94 GiB is free."
)


@dataclass
class OpenAICompatibleBehaviour(Behaviour):
    """The shared behaviours plus this fake's own (see the module docstring)."""

    fail_next: int = 0  # next N generations fail (500)
    oom_next: int = 0  # next N generations fail with CUDA out of memory (500)
    crash_next: int = 0  # next N generations: the server dies mid-run
    crash_restart_s: float = 1.0
    reject_other_model: bool = False  # 400 "Model mismatch" (early vllm-omni image server)


class GenerationFailed(Exception):
    pass


class FakeOpenAICompatible(FakeServer):
    """The fake. ``api_key=None`` wants no key; ``app`` is the ASGI application."""

    def __init__(
        self,
        *,
        model: str = "Qwen/Qwen-Image",
        flavour: schema.Flavour = "sglang",
        api_key: str | None = None,
        behaviour: Behaviour | None = None,
        public_url: str | None = None,
    ) -> None:
        knobs = _own_behaviour(behaviour)
        super().__init__(knobs, public_url)
        self.knobs = knobs
        self.model = model
        self.flavour = flavour
        self.api_key = api_key
        self.created = schema.now()
        self.gpu = asyncio.Lock()  # one generation at a time
        self.switch = CrashSwitch()
        self.app: ASGIApp = drops_connections(self._require_key(self._fastapi()), self.switch)

    def _fastapi(self) -> FastAPI:
        app = FastAPI(routes=list(self.core.control_routes()), lifespan=self._lifespan)
        if self.flavour == "sglang":
            app.add_api_route("/v1/images/generations", self.generate_sglang, methods=["POST"])
            app.add_api_route("/v1/models/{model:path}", self.retrieve_model, methods=["GET"])
        else:
            app.add_api_route("/v1/images/generations", self.generate_vllm, methods=["POST"])
            app.add_exception_handler(RequestValidationError, schema.vllm_validation_error)
        app.add_api_route("/v1/images/edits", self.edit, methods=["POST"])
        app.add_api_route("/v1/models", self.models, methods=["GET"])
        app.router.routes.append(Route("/health", self.health, methods=["GET"]))
        return app

    # --- endpoints -------------------------------------------------------------------------

    async def generate_sglang(self, body: schema.SGLangImageRequest) -> Response:
        seed = body.seed[0] if isinstance(body.seed, list) and body.seed else None
        seed = body.seed if isinstance(body.seed, int) else seed
        n = max(1, min(int(body.n or 1), 10))
        answer = await self._generate(body.model, body.prompt, body.size, n, _seed(seed))
        fmt = (body.response_format or "b64_json").lower()
        if answer.status_code != 200 or fmt == "b64_json":
            return answer
        # SGLang checks the format after generating: the GPU time is spent, then refused
        if fmt == "url":
            message = "response_format='url' requires cloud storage to be configured."
            return self._error(400, message)
        return self._error(400, f"response_format={fmt} is not supported")

    async def generate_vllm(self, body: schema.VllmOmniImageRequest) -> Response:
        if body.size is not None and (message := schema.vllm_size_error(body.size)):
            return self._error(400, message)  # parse_size's ValueError → 400
        return await self._generate(body.model, body.prompt, body.size, body.n, _seed(body.seed))

    async def edit(self, request: Request) -> Response:
        """``POST /v1/images/edits`` (facts in ``openai_compatible_edits.py``)."""
        try:
            parts = parse_form(request.headers.get("content-type", ""), await request.body())
            form = read_form(parts)
        except NotMultipart:
            parts, form = [], EditForm({}, [])
        except BadImage as exc:
            return self._error(400, str(exc))
        if "prompt" not in form.fields:
            error = {"type": "missing", "loc": ["body", "prompt"], "msg": "Field required"}
            missing = RequestValidationError([error | {"input": None}])
            if self.flavour == "sglang":
                return JSONResponse({"detail": missing.errors()}, status_code=422)
            return await schema.vllm_validation_error(request, missing)
        if not form.images:
            return self._error(422, "Field 'image' or 'url' is required")
        fields = form.fields
        size = fields.get("size") or "auto"
        wanted = _parse_size(size) or form.images[0].size
        seed = int(fields["seed"]) if fields.get("seed", "").lstrip("-").isdigit() else None
        if seed is None and self.flavour == "sglang":
            seed = SGLANG_DEFAULT_SEED
        n = max(1, min(int(fields.get("n") or 1), 10))
        prompt = fields["prompt"]

        def draw(seed: int, width: int, height: int) -> bytes:
            return derived(form.images, prompt, seed, (width, height))

        size_text = f"{wanted[0]}x{wanted[1]}"
        return await self._generate(fields.get("model"), prompt, size_text, n, _seed(seed), draw)

    async def models(self) -> Response:
        return JSONResponse(schema.model_list(self.flavour, self.model, self.created))

    async def retrieve_model(self, model: str) -> Response:
        card = schema.model_list(self.flavour, self.model, self.created)["data"][0]
        if model == self.model:
            return JSONResponse(card)
        error = {
            "message": f"The model '{model}' does not exist",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
        return JSONResponse({"error": error}, status_code=404)

    async def health(self, request: Request) -> Response:
        if self.flavour == "sglang":
            return JSONResponse({"status": "ok"})
        return Response(status_code=200)

    # --- a generation ----------------------------------------------------------------------

    async def _generate(
        self,
        model: str | None,
        prompt: str,
        size: str | None,
        n: int,
        seed: int,
        draw: Callable[[int, int, int], bytes] | None = None,
    ) -> Response:
        if (refused := await self._gate(model)) is not None:
            return refused
        width, height = _parse_size(size or "") or (1024, 1024)
        fault = self._take_fault()
        self.core.stats.creates[self.model] += 1
        started = time.monotonic()
        try:
            async with self.gpu:
                if self.switch.down:
                    raise Crashed("the server died while this request waited")
                await self._run(fault)
        except Crashed:
            return Dropped()
        except GenerationFailed as exc:
            return self._failed(str(exc))
        if draw is None:
            images = [render(prompt, seed + i, width, height, "png") for i in range(n)]
        else:  # an edit: derived from its input images
            images = [draw(seed + i, width, height) for i in range(n)]
        return JSONResponse(self._answer(prompt, images, f"{width}x{height}", started))

    async def _run(self, fault: str | None) -> None:
        half = self.behaviour.latency_s / 2
        if not await self.core.background.sleep(half):
            raise Crashed("the fake is closing")
        if fault == "crash":
            self.switch.crash(self.knobs.crash_restart_s)
            raise Crashed("the server died mid-generation")
        if fault == "oom":
            raise GenerationFailed(OOM_MESSAGE)
        if fault == "fail":
            raise GenerationFailed("Model generation returned no output.")
        await self.core.background.sleep(half)

    def _answer(
        self, prompt: str, images: list[bytes], size: str, started: float
    ) -> dict[str, Any]:
        b64 = [base64.b64encode(i).decode() for i in images]
        if self.flavour == "sglang":  # ImageResponse
            data = [
                {"b64_json": b, "url": None, "revised_prompt": prompt, "file_path": None}
                for b in b64
            ]
            return {
                "id": secrets.token_hex(16),
                "created": schema.now(),
                "data": data,
                "peak_memory_mb": 20480.0,
                "inference_time_s": round(time.monotonic() - started, 3),
                "usage": None,
            }
        return {  # ImageGenerationResponse
            "created": schema.now(),
            "data": [{"b64_json": b, "url": None, "revised_prompt": None} for b in b64],
            "output_format": "png",
            "size": size,
        }

    def _failed(self, message: str) -> Response:
        if self.flavour == "sglang":  # an uncaught RuntimeError: Starlette's plain 500
            return PlainTextResponse("Internal Server Error", status_code=500)
        return self._error(500, f"Image generation failed: {message}")

    async def _gate(self, model: str | None) -> Response | None:
        if self.knobs.reject_other_model and model is not None and model != self.model:
            message = (
                f"Model mismatch: request specifies '{model}' but server is running "
                f"'{self.model}'. Either omit the 'model' field or use '{self.model}'."
            )
            return self._error(400, message)
        fault = await self.core.fault("generate")
        if fault == "garbage":
            return self.core.garbage_response()
        if fault is not None:
            status = 429 if fault == "rate_limit" else self.behaviour.error_status
            resp = self._error(status, HTTPStatus(status).phrase)
            if status == 429:
                resp.headers.update(self.core.rate_limit_headers())
            return resp
        return None

    def _take_fault(self) -> str | None:
        for name, fault in (("crash_next", "crash"), ("oom_next", "oom"), ("fail_next", "fail")):
            if self.knobs.take(name):
                return fault
        return None

    def _error(self, status: int, message: str) -> JSONResponse:
        return schema.http_error(self.flavour, status, message)

    def _require_key(self, app: ASGIApp) -> ASGIApp:
        """``--api-key``: every ``/v1`` path wants the bearer key (``/health`` stays open)."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and self.api_key is not None and _is_api(scope):
                headers = dict(scope.get("headers") or [])
                scheme, _, key = headers.get(b"authorization", b"").decode().partition(" ")
                if scheme.lower() != "bearer" or key != self.api_key:
                    denied = JSONResponse({"error": "Unauthorized"}, status_code=401)
                    await denied(scope, receive, send)
                    return
            await app(scope, receive, send)

        return guarded


def _is_api(scope: Scope) -> bool:
    root = str(scope.get("root_path", ""))
    path = str(scope.get("path", ""))
    return path.removeprefix(root).startswith("/v1") and scope.get("method") != "OPTIONS"


def _own_behaviour(behaviour: Behaviour | None) -> OpenAICompatibleBehaviour:
    if isinstance(behaviour, OpenAICompatibleBehaviour):
        return behaviour
    if behaviour is None:
        return OpenAICompatibleBehaviour()
    return OpenAICompatibleBehaviour(**dataclasses.asdict(behaviour))


def _parse_size(size: str) -> tuple[int, int] | None:
    width, sep, height = size.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        return None
    w, h = int(width), int(height)
    return (w, h) if w > 0 and h > 0 else None


def _seed(seed: int | None) -> int:
    return secrets.randbelow(2**31) if seed is None else seed
