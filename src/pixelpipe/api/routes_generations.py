"""/v1/generations: submit, read, list (gallery feed), cancel, retry, live events."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from pixelpipe.api.deps import CallerDep, ServicesDep
from pixelpipe.api.schemas import GenerationList, GenerationPublic, render_job
from pixelpipe.api.sse import job_event_stream
from pixelpipe.api.urls import request_base
from pixelpipe.errors import InvalidRequest
from pixelpipe.intake import GenerationRequest
from pixelpipe.notify.public import iso, job_payload, usd
from pixelpipe.security import event_tokens
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.jobs import cancel, delete, get_job, list_jobs
from pixelpipe.usecases.retry import retry
from pixelpipe.usecases.submit import Submission, submit

router = APIRouter(prefix="/v1/generations", tags=["generations"])

PROBLEMS: dict[int | str, dict[str, Any]] = {
    402: {"description": "Budget exceeded (problem+json)"},
    404: {"description": "Not found (problem+json)"},
    409: {"description": "Conflict (problem+json)"},
    422: {"description": "Invalid request or prompt blocked (problem+json)"},
    429: {"description": "Rate limited (problem+json, Retry-After)"},
}


def _problem(description: str) -> dict[str, Any]:
    # the content (problem+json, the Problem schema) is filled in by openapi_doc.complete
    return {"description": f"{description} (problem+json)"}


@router.post(
    "",
    status_code=202,
    response_model=GenerationPublic,
    responses={200: {"description": "Served from cache", "model": GenerationPublic}, **PROBLEMS},
)
async def create_generation(
    body: GenerationRequest,
    request: Request,
    svc: ServicesDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """Start a generation. 202 with the job; 200 when the image is already stored (cache hit).

    Valid requests are answered by :mod:`pixelpipe.api.fast_lane` before FastAPI sees them; this
    route documents the endpoint and answers bodies that do not validate.
    """
    return await submission_response(svc, body, caller, idempotency_key, request_base(svc, request))


async def submission_response(
    svc: Services,
    body: GenerationRequest,
    caller: Caller,
    idempotency_key: str | None,
    base: str,
) -> Response:
    sub = await submit(svc, body, caller=caller, idempotency_key=idempotency_key)
    return await submitted(svc, sub, base)


async def submitted(svc: Services, sub: Submission, base: str) -> Response:
    """202 with the job (200 when it is already done: a cache hit), ``Location`` and cost."""
    job = sub.job
    headers = {
        "Location": f"{base}/v1/generations/{job.id}",
        "X-Pixelpipe-Cached": "true" if job.cached else "false",
    }
    cost = usd(job.cost_micros if job.cost_micros is not None else job.estimate_micros)
    if cost is not None:
        headers["X-Pixelpipe-Cost-USD"] = cost
    return Response(
        orjson.dumps(await job_payload(svc, job, base)),
        status_code=200 if job.status.terminal else 202,
        media_type="application/json",
        headers=headers,
    )


@router.get("", response_model=GenerationList)
async def list_generations(
    request: Request,
    svc: ServicesDep,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    model: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=200, description="search in prompts")] = None,
    group: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> GenerationList:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    page, next_cursor = await list_jobs(
        svc, before=cursor, limit=limit, model=model, query=q, group=group, status=status
    )
    base = request_base(svc, request)
    data = [await render_job(svc, j, base) for j in page]
    return GenerationList(data=data, next_cursor=next_cursor)


@router.get("/{job_id}", response_model=GenerationPublic, responses=PROBLEMS)
async def get_generation(
    job_id: str, request: Request, svc: ServicesDep, response: Response
) -> GenerationPublic:
    job = await get_job(svc, job_id)
    if job.cost_micros is not None:
        response.headers["X-Pixelpipe-Cost-USD"] = usd(job.cost_micros) or "0"
    return await render_job(svc, job, request_base(svc, request))


@router.post("/{job_id}/cancel", response_model=GenerationPublic, responses=PROBLEMS)
async def cancel_generation(job_id: str, request: Request, svc: ServicesDep) -> GenerationPublic:
    return await render_job(svc, await cancel(svc, job_id), request_base(svc, request))


@router.post(
    "/{job_id}/retry",
    status_code=202,
    response_model=GenerationPublic,
    responses={
        200: {"description": "Served from cache", "model": GenerationPublic},
        403: _problem("Started with another API key"),
        409: _problem("It succeeded or is still running: only a failed or canceled one retries"),
        **PROBLEMS,
    },
)
async def retry_generation(
    job_id: str, request: Request, svc: ServicesDep, caller: CallerDep
) -> Response:
    """Retry a failed or canceled generation: a new job with the same request (safety, budget,
    cache and all), whose ``retry_of`` names this one. 202 with the new job; 200 when its image
    is stored by now (cache hit)."""
    return await submitted(svc, await retry(svc, job_id, caller=caller), request_base(svc, request))


@router.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Deleted (also when it was already deleted)"},
        403: _problem("Started with another API key"),
        404: _problem("No generation with this id"),
        409: _problem("Still running: cancel it first"),
    },
)
async def delete_generation(job_id: str, svc: ServicesDep, caller: CallerDep) -> Response:
    """Delete a finished generation (scope ``generate``). Its stored image is deleted only when
    no other generation shares it (cache hits reference the same object); ledger entries stay.
    Idempotent: deleting again answers 204; an id that never existed answers 404."""
    await delete(svc, job_id, caller=caller)
    return Response(status_code=204)


class EventTokenPublic(BaseModel):
    object: str = "event_token"
    token: str
    expires_at: str
    expires_in: int = Field(description="seconds the token can open a stream for")
    url: str = Field(description="the events URL with the token: what EventSource opens")


@router.post(
    "/{job_id}/event-token",
    response_model=EventTokenPublic,
    responses={404: PROBLEMS[404]},
)
async def create_event_token(
    job_id: str, request: Request, svc: ServicesDep, caller: CallerDep, response: Response
) -> EventTokenPublic:
    """A short-lived token for ``GET …/events?token=`` (EventSource cannot send a key).

    Scope ``read``; valid 5 minutes for this job's events only, and only while the key that
    asked for it is active (see ``security/event_tokens.py``)."""
    await get_job(svc, job_id)
    now = time.time()
    token, expires_at = event_tokens.issue(job_id, caller.key_id, svc.settings.signing_key(), now)
    response.headers["Cache-Control"] = "no-store"
    events = f"{request_base(svc, request)}/v1/generations/{quote(job_id, safe='')}/events"
    return EventTokenPublic(
        token=token,
        expires_at=iso(expires_at) or "",
        expires_in=expires_at - int(now),
        url=f"{events}?{urlencode({event_tokens.PARAM: token})}",
    )


@router.get(
    "/{job_id}/events",
    responses={200: {"content": {"text/event-stream": {}}}, **PROBLEMS},
)
async def generation_events(
    job_id: str,
    request: Request,
    svc: ServicesDep,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0, description="replay events after this id")] = None,
    token: Annotated[
        str | None, Query(max_length=200, description="an event token (instead of a key)")
    ] = None,
) -> EventSourceResponse:
    """Server-sent events: status and progress; replays from ``Last-Event-ID``; ends when done.

    Each ``status`` event's ``job`` is the generation as it was at that event. With API keys on,
    send the key, or pass ``token`` from ``POST …/event-token`` (for EventSource)."""
    await get_job(svc, job_id)
    start = after or 0
    if last_event_id:
        try:
            start = int(last_event_id)
        except ValueError:
            raise InvalidRequest("Last-Event-ID must be an event id (an integer)") from None
    return EventSourceResponse(
        job_event_stream(svc, job_id, start, request, request_base(svc, request)),
        ping=15,
        send_timeout=30,
    )
