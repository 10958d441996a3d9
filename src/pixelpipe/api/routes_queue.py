"""The queue (docs/queue.md): ``GET /v1/queue`` (what runs and waits on each provider or backend,
in order, with positions and ETAs), a job's priority, cancelling many at once; and for an admin
key under ``/v1/admin/queue``: pausing and resuming a provider or backend, quarantined jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from pixelpipe.api.deps import CallerDep, ServicesDep
from pixelpipe.jobs.model import Job
from pixelpipe.jobs.store import Pause
from pixelpipe.notify.public import iso
from pixelpipe.security.caller import Caller
from pixelpipe.usecases import queue
from pixelpipe.usecases.queue import Entry, Line, QueueView

router = APIRouter(tags=["queue"])

PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not your job, or not an admin key (problem+json)"},
    404: {"description": "Not found (problem+json)"},
    409: {"description": "Conflict (problem+json)"},
    422: {"description": "Invalid request (problem+json)"},
}


class QueuedJob(BaseModel):
    id: str
    status: str
    model: str
    prompt: str
    provider: str | None
    priority: int = Field(description="0-9, higher runs first")
    position: int | None = Field(None, description="Place among the waiting jobs (1 = next)")
    eta_s: float | None = Field(None, description="Seconds until its image is likely ready")
    progress: dict[str, Any] = Field(default_factory=dict)
    api_key_id: str | None = None
    created_at: str
    crashes: int = 0
    held_reason: str | None = Field(None, description="Why it is quarantined (held)")


class PausePublic(BaseModel):
    target: str
    paused_at: str
    reason: str | None


class QueueLine(BaseModel):
    target: str = Field(description="A provider or a self-hosted backend")
    capacity: int = Field(description="Runs at once: a backend's slots, else the workers'")
    paused: PausePublic | None
    running: list[QueuedJob]
    waiting: list[QueuedJob] = Field(description="In the order they will run (the first 200)")
    waiting_total: int


class QueuePublic(BaseModel):
    object: str = "queue"
    lines: list[QueueLine]
    held: list[QueuedJob] = Field(description="Quarantined jobs (poison): released or canceled")
    at: str


class PriorityBody(BaseModel):
    priority: int = Field(..., ge=0, le=9, description="0-9, higher runs first")


class CancelBody(BaseModel):
    ids: list[str] = Field(..., min_length=1, max_length=queue.MAX_CANCEL)


class CancelOutcome(BaseModel):
    id: str
    status: str = Field(description="canceled, or the problem's code (not_found, forbidden, …)")
    detail: str | None = None


class CancelList(BaseModel):
    object: str = "list"
    data: list[CancelOutcome]


class PauseBody(BaseModel):
    reason: str | None = Field(None, max_length=500)


class ResumePublic(BaseModel):
    target: str
    resumed: bool = Field(description="False when it was not paused")


def _job(job: Job, caller: Caller, entry: Entry | None = None) -> QueuedJob:
    progress = job.provider_state.get("progress") or {}
    eta = entry.eta_s if entry and entry.eta_s is not None else progress.get("eta_s")
    return QueuedJob(
        id=job.id,
        status=str(job.status),
        model=job.model,
        prompt=job.request.prompt,
        provider=job.provider,
        priority=job.priority,
        position=entry.position if entry else None,
        eta_s=eta if isinstance(eta, int | float) else None,
        progress=progress,
        api_key_id=job.api_key_id if caller.admin or caller.key_id is None else None,
        created_at=iso(job.created_at) or "",
        crashes=job.crashes,
        held_reason=job.held_reason,
    )


def _pause(p: Pause | None) -> PausePublic | None:
    return (
        None
        if p is None
        else PausePublic(target=p.target, paused_at=iso(p.paused_at) or "", reason=p.reason)
    )


def _line(line: Line, caller: Caller) -> QueueLine:
    return QueueLine(
        target=line.target,
        capacity=line.capacity,
        paused=_pause(line.paused),
        running=[_job(e.job, caller, e) for e in line.running],
        waiting=[_job(e.job, caller, e) for e in line.waiting],
        waiting_total=line.waiting_total,
    )


def render(view: QueueView, caller: Caller) -> QueuePublic:
    return QueuePublic(
        lines=[_line(line, caller) for line in view.lines],
        held=[_job(j, caller) for j in view.held],
        at=iso(view.at) or "",
    )


@router.get("/v1/queue", response_model=QueuePublic, responses=PROBLEMS)
async def get_queue(svc: ServicesDep, caller: CallerDep) -> QueuePublic:
    """Running and waiting jobs per provider or backend, waiting ones in the order they will run,
    each with its position, priority, progress and ETA. A key sees its own jobs (their positions
    count everyone's); an admin key sees all."""
    return render(await queue.view(svc, caller), caller)


@router.post("/v1/queue/jobs/{job_id}/priority", response_model=QueuedJob, responses=PROBLEMS)
async def set_priority(
    job_id: str, body: PriorityBody, svc: ServicesDep, caller: CallerDep
) -> QueuedJob:
    """Move a waiting job up or down the queue (at most your key's priority ceiling)."""
    return _job(await queue.set_priority(svc, job_id, body.priority, caller), caller)


@router.post("/v1/queue/cancel", response_model=CancelList, responses=PROBLEMS)
async def cancel_many(body: CancelBody, svc: ServicesDep, caller: CallerDep) -> CancelList:
    """Cancel many jobs at once; one outcome per id (one that cannot be canceled does not stop
    the others)."""
    done = await queue.cancel_many(svc, body.ids, caller)
    return CancelList(data=[CancelOutcome(id=r.id, status=r.status, detail=r.detail) for r in done])


@router.post("/v1/admin/queue/pauses/{target}", response_model=PausePublic, responses=PROBLEMS)
async def pause(
    target: str, svc: ServicesDep, caller: CallerDep, body: PauseBody | None = None
) -> PausePublic:
    """Pause (drain) a provider or backend: running jobs finish, waiting ones wait, in every
    process. Pausing again keeps the first pause."""
    paused = await queue.pause(svc, target, body.reason if body else None, caller)
    out = _pause(paused)
    assert out is not None
    return out


@router.delete("/v1/admin/queue/pauses/{target}", response_model=ResumePublic, responses=PROBLEMS)
async def resume(target: str, svc: ServicesDep, caller: CallerDep) -> ResumePublic:
    """Resume a paused provider or backend: its waiting jobs run in their order."""
    return ResumePublic(target=target, resumed=await queue.resume(svc, target, caller))


@router.get("/v1/admin/queue/held", response_model=list[QueuedJob], responses=PROBLEMS)
async def held(svc: ServicesDep, caller: CallerDep) -> list[QueuedJob]:
    """Quarantined (poison) jobs: each with why it was held."""
    return [_job(j, caller) for j in await queue.held(svc, caller)]


@router.post("/v1/admin/queue/held/{job_id}/release", response_model=QueuedJob, responses=PROBLEMS)
async def release(job_id: str, svc: ServicesDep, caller: CallerDep) -> QueuedJob:
    """Let a quarantined job run again (its crash count starts over). To drop it instead,
    cancel it (``POST /v1/generations/{id}/cancel``)."""
    return _job(await queue.release(svc, job_id, caller), caller)
