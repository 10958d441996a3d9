"""``POST /v1/images/generations``: the OpenAI Images API in front of the whole pipeline.

Point any OpenAI client at ``http://HOST:PORT/v1``::

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused-without-auth")
    img = client.images.generate(model="flux-schnell", prompt="a red fox", size="1024x1024")
    print(img.data[0].url)  # our durable URL, not an expiring provider URL

Every image goes through ``usecases.submit`` (intake, safety, content key, cache, budget,
single-flight, job, queue) exactly like ``POST /v1/generations``; the handler then waits for the
jobs to finish (``done:<id>`` notifications, bounded by ``PIXELPIPE_OPENAI_WAIT_S``) and answers
``{created, data: [{url | b64_json, revised_prompt?}]}``.

``POST /v1/images/edits`` (``client.images.edit``) takes OpenAI's multipart form
(:mod:`pixelpipe.api.openai_edits`): each image and the mask are accepted like ``POST
/v1/uploads`` (verified, stripped, stored), then the edit runs and answers exactly like a
generation, for any catalog model that takes input images (another one: 400 naming those that do).

Mapping (see docs/python.md, "OpenAI-compatible endpoint"):

* ``model``: a catalog name (``preview`` — the default —, ``flux-schnell``, ``gpt-image-1``, …) or a
  provider's id for it (``black-forest-labs/flux-schnell``); unknown → 404 ``model_not_found``.
* ``n`` (1–10) fans out into ``n`` jobs with seeds ``seed … seed+n-1`` (random seeds without one).
* ``size`` (``auto`` = the model default), ``quality`` (``auto``; ``standard``/``hd`` and
  ``low``/``medium``/``high`` are translated to the model's tiers; ignored by models without
  tiers), ``output_format`` → ``format``; ``response_format`` ``url`` (absolute, built from the
  request's base URL or ``PIXELPIPE_PUBLIC_URL``) or ``b64_json`` (default for ``gpt-image-*``,
  which is what OpenAI does); ``user``, ``style``, ``background``, ``moderation`` are accepted and
  ignored.
* ``stream=true`` (with ``partial_images`` 0–3, n=1) answers server-sent events: partial images,
  then the stored image (:mod:`pixelpipe.api.openai_stream`, docs/streaming.md); on edits too
  (multipart fields ``stream``, ``partial_images``: ``image_edit.*`` events).
* pixelpipe extensions (``extra_body`` in the OpenAI SDK): ``seed``, ``webhook``,
  ``negative_prompt``, ``steps``, ``guidance``, ``aspect_ratio``, ``provider``, ``group``.

Errors are OpenAI error objects ``{"error": {message, type, param, code}}`` (plus
``pixelpipe_code``, our stable code): blocked prompts (safety rules or the provider's content
policy) → 400 ``content_policy_violation``; budget → 429 ``insufficient_quota`` (with
``x-should-retry: false``); invalid input → 400 ``invalid_request_error``.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixelpipe.api.decoding import body_error, require_json_body
from pixelpipe.api.deps import get_caller, get_services, request_body
from pixelpipe.api.multipart import form_parts
from pixelpipe.api.openai_edits import EDIT_BODY, edit_inputs, read_form
from pixelpipe.api.openai_stream import MAX_PARTIAL_IMAGES, StreamPlan, stream_response
from pixelpipe.api.problems import openai_error_response
from pixelpipe.catalog import ModelSpec
from pixelpipe.errors import (
    InvalidRequest,
    JobTimedOut,
    NotFound,
    PixelpipeError,
    UnsupportedEndpoint,
)
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.notify.public import usd
from pixelpipe.services import Services
from pixelpipe.usecases.batch import submit_many, wait_many
from pixelpipe.usecases.images import image_bytes, image_url

log = logging.getLogger("pixelpipe.api.openai")
router = APIRouter(tags=["openai"])
MAX_N = 10
SEED_MAX = 2**32 - 1


class ImageGenerationRequest(BaseModel):
    """Body of ``POST /v1/images/generations`` (OpenAI Images API, plus pixelpipe extensions)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(..., description="What to draw.")
    model: str | None = Field(None, description="Catalog model name; default preview.")
    n: int = Field(1, ge=1, le=MAX_N, description="Images (one job each).")
    size: str | None = Field(None, description="WIDTHxHEIGHT or auto.")
    quality: str | None = Field(None, description="auto, standard, hd, low, medium, high.")
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    user: str | None = Field(None, max_length=256, description="Accepted; not stored.")
    stream: bool | None = Field(
        None, description="Server-sent events: partial images, then the image (n=1)."
    )
    partial_images: int | None = Field(
        None, ge=0, le=MAX_PARTIAL_IMAGES, description="Partial images to stream (0-3)."
    )
    # pixelpipe extensions
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    webhook: str | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    aspect_ratio: str | None = None
    provider: str | None = None
    group: str | None = Field(None, max_length=64)


class ImageData(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class InputTokensDetails(BaseModel):
    text_tokens: int
    image_tokens: int


class ImagesUsage(BaseModel):
    """Token usage (GPT image models), summed over the images; cache hits count 0."""

    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    total_tokens: int


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]
    size: str | None = None
    output_format: str | None = None
    quality: str | None = None
    background: str | None = Field(None, description="GPT image models: `auto` (not forwarded)")
    usage: ImagesUsage | None = Field(None, description="GPT image models, when reported")


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None
    pixelpipe_code: str = Field(description="pixelpipe's stable error code")


class OpenAIError(BaseModel):
    error: OpenAIErrorBody


OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OpenAIError, "description": "invalid_request_error / content_policy_violation"},
    404: {"model": OpenAIError, "description": "model_not_found"},
    429: {"model": OpenAIError, "description": "insufficient_quota / rate_limit_exceeded"},
    401: {"model": OpenAIError, "description": "invalid_api_key (when API keys are required)"},
    403: {"model": OpenAIError, "description": "forbidden"},
    409: {"model": OpenAIError, "description": "canceled while waiting"},
    413: {"model": OpenAIError, "description": "request body too large"},
    500: {"model": OpenAIError, "description": "server_error"},
    502: {"model": OpenAIError, "description": "server_error (provider or output failure)"},
    503: {"model": OpenAIError, "description": "server_error (provider or storage unavailable)"},
    504: {"model": OpenAIError, "description": "the images were not ready in time"},
}


_STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The images; with `stream=true`, server-sent events (docs/streaming.md)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/v1/images/generations",
    response_model=ImagesResponse,
    responses={**_STREAMED, **OPENAI_ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ImageGenerationRequest.model_json_schema()}},
        }
    },
)
async def create_images(request: Request) -> Response:
    """OpenAI-compatible image generation through the whole pipeline (waits for the images)."""
    svc = await get_services(request)
    try:
        caller = await get_caller(request)
        require_json_body(request.headers.get("content-type"))
        body = parse_body(await request_body(request))
        spec = resolve_model(svc, body.model)
        bodies = generation_requests(body, spec)
        subs = await submit_many(svc, bodies, caller=caller)
        if body.stream:
            return await stream_images(svc, request, body, subs[0].job)
        jobs = await wait_all(svc, [s.job for s in subs], svc.settings.openai_wait_s)
        return await respond(svc, request, body.response_format, spec, jobs)
    except PixelpipeError as exc:
        return error_response(exc.code, exc.detail, exc.extra, retry_after=_retry_after(exc))
    except Exception:
        log.exception("unhandled error in POST /v1/images/generations")
        return error_response("internal_error", "an unexpected error occurred; it is logged", {})


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "image": {"type": "string", "format": "binary"},
                    "prompt": {"type": "string"},
                    "model": {"type": "string"},
                },
            }
        }
    },
}
_UNSUPPORTED_ERRORS: dict[int | str, dict[str, Any]] = {
    s: OPENAI_ERRORS[s] for s in (401, 403, 413, 429)
}
_INSTEAD = (
    "generate a new image with POST /v1/images/generations (client.images.generate) and "
    "describe the change in the prompt"
)


# the route arguments every not-yet-supported upload endpoint shares
_UNSUPPORTED_ROUTE: dict[str, Any] = {
    "status_code": 400,
    "response_model": OpenAIError,
    "responses": _UNSUPPORTED_ERRORS,
    "openapi_extra": {"requestBody": _UPLOAD_BODY},
}


@router.post(
    "/v1/images/edits",
    response_model=ImagesResponse,
    responses={**_STREAMED, **OPENAI_ERRORS},
    openapi_extra={"requestBody": EDIT_BODY},
)
async def create_edit(request: Request) -> Response:
    """OpenAI-compatible image edit (multipart): the inputs are stored like ``POST /v1/uploads``
    and the edit runs through the whole pipeline like ``POST /v1/images/generations``."""
    svc = await get_services(request)
    try:
        caller = await get_caller(request)
        parts = form_parts(request.headers.get("content-type", ""), await request_body(request))
        form = read_form(parts)
        body = validate_body(dict(form.fields))
        spec = resolve_model(svc, body.model)
        inputs = await edit_inputs(svc, form, spec, body.prompt)
        bodies = [r.model_copy(update=inputs) for r in generation_requests(body, spec)]
        subs = await submit_many(svc, bodies, caller=caller)
        if body.stream:
            return await stream_images(svc, request, body, subs[0].job, prefix="image_edit")
        jobs = await wait_all(svc, [s.job for s in subs], svc.settings.openai_wait_s)
        return await respond(svc, request, body.response_format, spec, jobs)
    except PixelpipeError as exc:
        return error_response(exc.code, exc.detail, exc.extra, retry_after=_retry_after(exc))
    except Exception:
        log.exception("unhandled error in POST /v1/images/edits")
        return error_response("internal_error", "an unexpected error occurred; it is logged", {})


@router.post(
    "/v1/images/variations",
    response_description="Always: image variations are not supported yet",
    **_UNSUPPORTED_ROUTE,
)
async def create_variation() -> Response:
    """Not supported yet: answers 400 ``unsupported_endpoint``."""
    return _unsupported("image variations (POST /v1/images/variations)")


def _unsupported(what: str) -> Response:
    exc = UnsupportedEndpoint(f"{what} are not supported by pixelpipe yet; {_INSTEAD}")
    return error_response(exc.code, exc.detail, exc.extra)


# ---- request → generation requests ---------------------------------------------------------


def parse_body(raw: bytes) -> ImageGenerationRequest:
    try:
        body = ImageGenerationRequest.model_validate_json(raw or b"null")
    except ValidationError as exc:
        err = exc.errors()[0]
        if err.get("type") == "json_invalid" and (why := body_error(raw)) is not None:
            raise why from None  # where the JSON broke, or which field is not Unicode text
        raise _invalid(err) from None
    return _one_image_when_streamed(body)


def _one_image_when_streamed(body: ImageGenerationRequest) -> ImageGenerationRequest:
    if body.stream and body.n > 1:
        raise InvalidRequest(
            "stream=true takes n=1 (the streamed events carry no image index); send one "
            "request per image",
            field="n",
        )
    return body


async def stream_images(
    svc: Services,
    request: Request,
    body: ImageGenerationRequest,
    job: Job,
    *,
    prefix: str = "image_generation",
) -> Response:
    """``stream=true``: server-sent events (:mod:`pixelpipe.api.openai_stream`). A job that
    already failed (an attached run) is refused like a non-streaming request."""
    if job.status.terminal and job.status is not JobStatus.SUCCEEDED:
        return failed_job_response(job)
    plan = StreamPlan(
        partial_images=body.partial_images or 0,
        timeout_s=svc.settings.openai_wait_s,
        quality=body.quality,
        prefix=prefix,
        keepalive_s=svc.settings.stream_keepalive_s,
    )
    return stream_response(svc, job, plan, request.is_disconnected, token_usage)


def validate_body(fields: dict[str, Any]) -> ImageGenerationRequest:
    """The text fields of a multipart request, validated like the JSON body."""
    try:
        return _one_image_when_streamed(ImageGenerationRequest.model_validate(fields))
    except ValidationError as exc:
        raise _invalid(exc.errors()[0]) from None


def _invalid(err: Any) -> InvalidRequest:
    loc = [str(p) for p in err.get("loc", ())]
    field = ".".join(loc) or None
    msg = err.get("msg", "invalid")
    detail = f"{field}: {msg}" if field else f"the request body is not valid: {msg}"
    return InvalidRequest(detail, field=field)


def resolve_model(svc: Services, name: str | None) -> ModelSpec:
    """A catalog name, or a provider's id of a catalog model (``fal-ai/flux/schnell``)."""
    name = name or "preview"
    spec = svc.catalog.models.get(name)
    if spec is not None:
        return spec
    for candidate in svc.catalog.models.values():
        if name in candidate.provider_ids.values():
            return candidate
    known = ", ".join(sorted(svc.catalog.models))
    raise NotFound(f"The model '{name}' does not exist; available: {known}", field="model")


_QUALITY_ALTERNATIVES = {
    "standard": ("standard", "medium"),
    "hd": ("hd", "high"),
    "low": ("low", "standard"),
    "medium": ("medium", "standard"),
    "high": ("high", "hd"),
}


def map_quality(quality: str | None, spec: ModelSpec) -> str | None:
    if quality is None or quality == "auto" or not spec.qualities:
        return None
    for candidate in _QUALITY_ALTERNATIVES.get(quality, (quality,)):
        if candidate in spec.qualities:
            return candidate
    return quality  # intake refuses it with the list of tiers


def generation_requests(body: ImageGenerationRequest, spec: ModelSpec) -> list[GenerationRequest]:
    size = None if body.size in (None, "auto") else body.size
    common: dict[str, Any] = {
        "prompt": body.prompt,
        "model": spec.name,
        "size": size,
        "aspect_ratio": body.aspect_ratio,
        "format": body.output_format,
        "quality": map_quality(body.quality, spec),
        "steps": body.steps,
        "guidance": body.guidance,
        "negative_prompt": body.negative_prompt,
        "provider": body.provider,
        "group": body.group,
        "webhook": body.webhook,
    }
    out = []
    for i in range(body.n):
        seed = None if body.seed is None else (body.seed + i) % (SEED_MAX + 1)
        out.append(GenerationRequest(**common, seed=seed))
    return out


async def wait_all(svc: Services, jobs: list[Job], timeout_s: float) -> list[Job]:
    try:
        return await wait_many(svc, jobs, timeout_s=timeout_s)
    except TimeoutError:
        ids = ", ".join(j.id for j in jobs)
        raise JobTimedOut(
            f"the images were not ready within {timeout_s:g} s; they keep running — follow "
            f"GET /v1/generations/{{id}} for: {ids}"
        ) from None


# ---- response ------------------------------------------------------------------------------


async def respond(
    svc: Services,
    request: Request,
    response_format: str | None,
    spec: ModelSpec,
    jobs: list[Job],
) -> Response:
    for job in jobs:
        if job.status is not JobStatus.SUCCEEDED:
            return failed_job_response(job)
    fmt = response_format or ("b64_json" if spec.name.startswith("gpt-image") else "url")
    base = ""
    data: list[dict[str, Any]] = []
    for job in jobs:
        item: dict[str, Any] = {}
        if fmt == "b64_json":
            item["b64_json"] = base64.b64encode(await image_bytes(svc, job)).decode()
        else:
            url = await image_url(svc, job)
            if url.startswith("/"):  # an app URL: absolute, on the host the client called
                base = base or str(request.base_url).rstrip("/")
                url = base + url
            item["url"] = url
        if job.revised_prompt:
            item["revised_prompt"] = job.revised_prompt
        data.append(item)
    payload: dict[str, Any] = {"created": int(time.time()), "data": data, **echo(spec, jobs)}
    costs = [j.cost_micros for j in jobs]
    headers = {
        "x-pixelpipe-generation-ids": ",".join(j.id for j in jobs),
        "x-pixelpipe-cached": ",".join("true" if j.cached else "false" for j in jobs),
    }
    if all(c is not None for c in costs):
        headers["x-pixelpipe-cost-usd"] = usd(sum(c or 0 for c in costs)) or "0"
    return Response(orjson.dumps(payload), media_type="application/json", headers=headers)


def echo(spec: ModelSpec, jobs: list[Job]) -> dict[str, Any]:
    """What OpenAI echoes: ``size``, ``output_format``, ``quality`` (models with tiers) and, for
    GPT image models, ``background`` and the token ``usage`` (see docs/integrations.md)."""
    first = jobs[0].request
    out: dict[str, Any] = {"size": first.size, "output_format": first.format}
    if first.quality:
        out["quality"] = first.quality
    if spec.name.startswith("gpt-image"):
        out["background"] = "auto"  # not forwarded: the model chooses
        usage = token_usage(jobs)
        if usage is not None:
            out["usage"] = usage
    return out


def token_usage(jobs: list[Job]) -> dict[str, Any] | None:
    """The provider's token counts summed over ``jobs`` (a cache hit ran nothing: 0 tokens);
    None when an image that ran at the provider reported none."""
    text = image = output = 0
    for job in jobs:
        if job.cached:
            continue
        counts = _token_counts(job.provider_state.get("usage") or {})
        if counts is None:
            return None
        text, image, output = text + counts[0], image + counts[1], output + counts[2]
    return {
        "input_tokens": text + image,
        "input_tokens_details": {"text_tokens": text, "image_tokens": image},
        "output_tokens": output,
        "total_tokens": text + image + output,
    }


def _token_counts(usage: dict[str, Any]) -> tuple[int, int, int] | None:
    """(text input, image input, output) tokens of one OpenAI ``usage`` object."""
    total_in, output = usage.get("input_tokens"), usage.get("output_tokens")
    if not isinstance(total_in, int) or not isinstance(output, int):
        return None
    details = usage.get("input_tokens_details") or {}
    image = details.get("image_tokens") if isinstance(details, dict) else None
    image_in = image if isinstance(image, int) else 0
    return total_in - image_in, image_in, output


def failed_job_response(job: Job) -> Response:
    code = job.error_code or ("canceled" if job.status is JobStatus.CANCELED else "provider_failed")
    detail = job.error_detail or f"generation {job.id} {job.status}"
    return error_response(code, f"{detail} (generation {job.id})", {})


# ---- errors --------------------------------------------------------------------------------


def error_response(
    code: str, message: str, extra: dict[str, Any], *, retry_after: float | None = None
) -> Response:
    """OpenAI's error envelope (:func:`pixelpipe.api.problems.openai_error_response`)."""
    return openai_error_response(code, message, extra, retry_after=retry_after)


def _retry_after(exc: PixelpipeError) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if value else None
