"""Catalog, estimates, cost totals, the all-jobs event stream, health and readiness."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from pixelpipe.api.deps import ServicesDep
from pixelpipe.api.routes_openai import OPENAI_ERRORS, resolve_model
from pixelpipe.api.sse import all_jobs_stream
from pixelpipe.catalog import ModelSpec
from pixelpipe.intake import GenerationRequest
from pixelpipe.notify.public import usd
from pixelpipe.services import Services
from pixelpipe.usecases import usage
from pixelpipe.usecases.estimate import estimate
from pixelpipe.usecases.health import gpu_backends, readiness

router = APIRouter(tags=["meta"])
_LOADED_AT = int(time.time())  # when this process loaded its catalog: OpenAI's ``created``


class ModelPublic(BaseModel):
    """One catalog model: OpenAI's model object (``id``, ``object``, ``created``, ``owned_by``)
    with pixelpipe's details as extra fields (limits, providers, prices)."""

    id: str = Field(description="The model name to send as `model` (same as `name`).")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time this server loaded its catalog.")
    owned_by: str = Field("pixelpipe", description="Always `pixelpipe` (see `providers`).")
    name: str
    label: str
    description: str
    providers: list[str]
    typical_latency_s: float
    formats: list[str]
    aspect_ratios: dict[str, list[int]]
    custom_size: dict[str, int] | None
    steps: dict[str, float] | None
    guidance: dict[str, float] | None
    qualities: list[str]
    negative_prompt: bool
    max_input_images: int = Field(
        0, description="Input images an edit may give (`images`); 0: text-to-image only."
    )
    min_input_images: int = Field(
        0, description="Input images a request must give (0: it may draw from text alone)."
    )
    accepts_mask: bool = Field(False, description="Whether an edit may give a `mask`.")
    strength: dict[str, float] | None = Field(
        None, description="The image-to-image `strength` range, when the model has one."
    )
    input_fidelities: list[str] = Field(
        default_factory=list, description="The `input_fidelity` values an edit may give."
    )
    price_usd: dict[str, str | None]  # provider -> price of a default image; null = unpriced
    provider_states: dict[str, str] = Field(
        default_factory=dict,
        description="The self-hosted providers (GPU servers) among `providers` and their last "
        "health check: `ready`, `busy`, `starting`, `down` or `unknown` (not checked yet). "
        "Hosted providers are not listed. A `down` one is skipped: its jobs fail over.",
    )


class EstimatePublic(BaseModel):
    model: str
    provider: str
    usd: str | None
    micros: int | None
    price_version: str
    basis: str
    request: dict[str, Any]


class CostsPublic(BaseModel):
    spent_today_usd: str
    spent_total_usd: str
    saved_total_usd: str
    unpriced_events: int
    images: int
    unconfirmed_events: int = Field(
        0,
        description="Provider attempts whose outcome will never be known (a crash or a lost "
        "answer): they may have been billed, and are counted in the spend at their estimate",
    )


class ModelList(BaseModel):
    """OpenAI's list object: what ``client.models.list()`` of the OpenAI SDKs reads."""

    object: Literal["list"] = "list"
    data: list[ModelPublic]


_MODEL_ERRORS: dict[int | str, dict[str, Any]] = {s: OPENAI_ERRORS[s] for s in (401, 403, 429, 503)}


@router.get("/v1/models", response_model=ModelList, tags=["openai"], responses=_MODEL_ERRORS)
async def list_models(svc: ServicesDep) -> ModelList:
    """The catalog, as OpenAI's model list (``client.models.list()``), with limits and prices."""
    return ModelList(data=[model_public(svc, spec) for spec in svc.catalog.models.values()])


@router.get(
    "/v1/models/{model:path}",
    response_model=ModelPublic,
    tags=["openai"],
    responses={**_MODEL_ERRORS, 404: OPENAI_ERRORS[404]},
)
async def get_model(model: str, svc: ServicesDep) -> ModelPublic:
    """One catalog model by name (or by a provider's id for it): ``client.models.retrieve``."""
    return model_public(svc, resolve_model(svc, model))


def model_public(svc: Services, spec: ModelSpec) -> ModelPublic:
    prices = svc.prices.display(spec.name)
    return ModelPublic(
        id=spec.name,
        created=_LOADED_AT,
        name=spec.name,
        label=spec.label,
        description=spec.description,
        providers=list(spec.providers),
        typical_latency_s=spec.typical_latency_s,
        formats=list(spec.formats),
        aspect_ratios={k: list(v) for k, v in spec.aspect_ratios.items()},
        custom_size=vars_or_none(spec.custom_size),
        steps=vars_or_none(spec.steps),
        guidance=vars_or_none(spec.guidance),
        qualities=list(spec.qualities),
        negative_prompt=spec.negative_prompt,
        max_input_images=spec.max_input_images,
        min_input_images=spec.min_input_images,
        accepts_mask=spec.accepts_mask,
        strength=vars_or_none(spec.strength),
        input_fidelities=list(spec.input_fidelities),
        price_usd={p: usd(prices.get(p)) for p in spec.providers},
        provider_states=provider_states(svc, spec),
    )


def provider_states(svc: Services, spec: ModelSpec) -> dict[str, str]:
    states = gpu_backends(svc)
    return {p: states[p]["state"] for p in spec.providers if p in states}


def vars_or_none(obj: Any) -> Any:
    if obj is None:
        return None
    return {k: getattr(obj, k) for k in obj.__slots__}


@router.post("/v1/estimates", response_model=EstimatePublic, tags=["costs"])
async def create_estimate(body: GenerationRequest, svc: ServicesDep) -> EstimatePublic:
    """The cost a generation would have (same body as POST /v1/generations); nothing is spent."""
    est = estimate(svc, body)
    return EstimatePublic(
        model=est.request.model,
        provider=est.provider,
        usd=usd(est.price.amount_micros),
        micros=est.price.amount_micros,
        price_version=est.price.version,
        basis=est.price.basis,
        request=est.request.to_dict(),
    )


@router.get("/v1/costs", response_model=CostsPublic, tags=["costs"])
async def cost_totals(svc: ServicesDep) -> CostsPublic:
    """Running totals for the cost counter: spent today, in total, and saved by the cache."""
    t = await usage.cost_totals(usage.books_of(svc))
    return CostsPublic(
        spent_today_usd=usd(t.spent_today_micros) or "0.00",
        spent_total_usd=usd(t.spent_total_micros) or "0.00",
        saved_total_usd=usd(t.saved_total_micros) or "0.00",
        unpriced_events=t.unpriced_events,
        images=t.images,
        unconfirmed_events=t.unconfirmed_events,
    )


@router.get("/v1/events", responses={200: {"content": {"text/event-stream": {}}}})
async def all_events(
    request: Request,
    svc: ServicesDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Server-sent ``job`` events for every job status change (galleries, cost counters);
    resumes after ``Last-Event-ID``."""
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    return EventSourceResponse(all_jobs_stream(svc, request, after), ping=15, send_timeout=30)


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(svc: ServicesDep) -> Response:
    """Prometheus metrics of this process."""
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"])
async def readyz(svc: ServicesDep, response: Response) -> JSONResponse:
    """Readiness: every configured backend answers (database, storage, queue, events).

    ``gpu_backends`` lists the self-hosted GPU servers and their last health check; a GPU
    server that is down does not make this process unready (its jobs fail over)."""
    ready = await readiness(svc)
    ok, checks, backends = ready.ok, ready.checks, ready.backends
    body = {"status": "ok" if ok else "unavailable", "checks": checks, "backends": backends}
    return JSONResponse(
        {**body, "gpu_backends": ready.gpu_backends}, status_code=200 if ok else 503
    )
