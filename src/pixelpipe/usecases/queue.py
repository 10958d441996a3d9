"""The queue as a user and an operator see and steer it (docs/queue.md): what runs and what waits
on each provider or backend, in order, with each waiting job's position and ETA; a job's priority;
cancelling many at once; pausing and resuming a provider or backend; quarantined (poison) jobs.

The order itself is decided by the job store (:mod:`pixelpipe.jobs.order`); this module reads it
and renders it. A keyed caller sees and steers its own key's jobs (their positions count every
job ahead, whoever's); an admin key sees and steers all, and alone pauses, resumes and releases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pixelpipe.errors import Conflict, Forbidden, InvalidRequest, NotFound, PixelpipeError
from pixelpipe.events.eta import Where, eta_s
from pixelpipe.intake import resolve_priority
from pixelpipe.jobs.ids import is_job_id
from pixelpipe.jobs.model import Job
from pixelpipe.jobs.order import PRIORITY_MAX, PRIORITY_MIN
from pixelpipe.jobs.slots import in_line
from pixelpipe.jobs.store import Pause
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.events import service_time_s, with_progress
from pixelpipe.usecases.jobs import cancel, check_owner
from pixelpipe.usecases.queue_place import capacity, queue_eta_s

SHOWN_WAITING = 200  # waiting jobs listed per provider (all are counted)
MAX_CANCEL = 1000  # ids per cancel-many request


@dataclass(frozen=True, slots=True)
class Entry:
    """One job in the queue view: ``position`` (1 = next) and ``eta_s`` while it waits."""

    job: Job
    position: int | None = None
    eta_s: float | None = None


@dataclass(slots=True)
class Line:
    """One provider's or backend's part of the queue."""

    target: str
    capacity: int  # runs at once: a backend's slots, else the workers' concurrency
    paused: Pause | None = None
    running: list[Entry] = field(default_factory=list)
    waiting: list[Entry] = field(default_factory=list)
    waiting_total: int = 0


@dataclass(frozen=True, slots=True)
class QueueView:
    lines: list[Line]
    held: list[Job]
    at: float


async def view(svc: Services, caller: Caller = Caller()) -> QueueView:
    """Every provider with work or a pause: its running and waiting jobs (the caller's own unless
    it is an admin key or auth is off), waiting ones in the order they will run."""
    lines: dict[str, Line] = {}
    pauses = await svc.store.pauses()

    def line(target: str) -> Line:
        if target not in lines:
            lines[target] = Line(target, capacity(svc, target), pauses.get(target))
        return lines[target]

    for target in pauses:
        line(target)
    for job in await svc.store.in_flight():
        if _visible(job, caller):
            line(job.provider or "").running.append(Entry(await with_progress(svc, job)))
    await _add_waiting(svc, caller, line)
    held = [j for j in await svc.store.held_jobs() if _visible(j, caller)]
    return QueueView(sorted(lines.values(), key=lambda ln: ln.target), held, time.time())


async def _add_waiting(svc: Services, caller: Caller, line: Callable[[str], Line]) -> None:
    """Each provider's waiting jobs in order: all counted, the first shown with their place."""
    shown: list[tuple[str, int]] = []
    per_target: dict[str, int] = {}
    for waiting in await svc.store.waiting_order():
        target = line(waiting.provider or "")
        target.waiting_total += 1
        visible = caller.key_id is None or caller.admin or waiting.api_key_id == caller.key_id
        if visible and per_target.get(target.target, 0) < SHOWN_WAITING:
            per_target[target.target] = per_target.get(target.target, 0) + 1
            shown.append((waiting.id, target.waiting_total))
    jobs = {j.id: j for j in await svc.store.jobs_by_ids([i for i, _ in shown])}
    for job_id, place in shown:
        if (job := jobs.get(job_id)) is not None:
            line(job.provider or "").waiting.append(await _waiting_entry(svc, job, place))


async def _waiting_entry(svc: Services, job: Job, place: int) -> Entry:
    """A waiting job with its place: its backend's line place when it is in one (the line
    decides its turn there), else its place in the provider's queue."""
    if in_line(job):
        progress = job.provider_state.get("progress") or {}
        told = progress.get("queue_position")
        place = told if isinstance(told, int) else place
    return Entry(job, place, await waiting_eta_s(svc, job, place))


async def waiting_eta_s(svc: Services, job: Job, position: int) -> float | None:
    """When a job ``position`` places from the front is likely to finish: the rounds of the
    provider's capacity ahead of it, then its own run, at the measured service time."""
    service = await service_time_s(svc, job.provider, job.model, job.request.size)
    runs = capacity(svc, job.provider or "")
    if in_line(job):
        return eta_s(service, Where(running=False, position=position, slots=runs))
    return queue_eta_s(service, position, runs)


def _visible(job: Job, caller: Caller) -> bool:
    return caller.key_id is None or caller.admin or job.api_key_id == caller.key_id


async def _owned(svc: Services, job_id: str, caller: Caller, action: str) -> Job:
    job = await svc.store.get(job_id) if is_job_id(job_id) else None
    if job is None:
        raise NotFound(f"no generation with id {job_id!r}")
    check_owner(job, caller, action)
    return job


async def set_priority(svc: Services, job_id: str, priority: int, caller: Caller = Caller()) -> Job:
    """Move a waiting job up or down (within the caller key's ceiling)."""
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidRequest("priority must be 0-9 (higher runs first)", field="priority")
    job = await _owned(svc, job_id, caller, "reprioritise")
    ceiling = svc.settings.queue_ceiling(caller.key_id, admin=caller.admin)
    resolve_priority(priority, "interactive", ceiling)  # above the key's ceiling: an error
    moved = await svc.store.set_priority(job.id, priority)
    if moved is None:
        raise Conflict(f"generation {job_id} is {job.status} already; only a waiting job moves")
    return moved


@dataclass(frozen=True, slots=True)
class CancelResult:
    id: str
    status: str  # "canceled", or the problem's code (not_found, forbidden, conflict)
    detail: str | None = None


async def cancel_many(
    svc: Services, ids: list[str], caller: Caller = Caller()
) -> list[CancelResult]:
    """Cancel each job of ``ids`` the caller may cancel; one result per id, in order (a job that
    cannot be canceled does not stop the others)."""
    if len(ids) > MAX_CANCEL:
        raise InvalidRequest(f"at most {MAX_CANCEL} ids per request; send several", field="ids")
    out = []
    for job_id in dict.fromkeys(ids):
        try:
            await _owned(svc, job_id, caller, "cancel")
            done = await cancel(svc, job_id)
            out.append(CancelResult(job_id, str(done.status)))
        except PixelpipeError as exc:
            out.append(CancelResult(job_id, exc.code, exc.detail))
    return out


def _targets(svc: Services) -> set[str]:
    return set(svc.providers)


def check_target(svc: Services, target: str) -> None:
    known = _targets(svc)
    if target not in known:
        raise NotFound(f"no provider or backend {target!r}; known: {', '.join(sorted(known))}")


def _admin(caller: Caller, action: str) -> None:
    if caller.key_id is not None and not caller.admin:
        raise Forbidden(f"only an admin key may {action}", required_scope="admin")


async def pause(svc: Services, target: str, reason: str | None, caller: Caller = Caller()) -> Pause:
    """Drain ``target``: its running jobs finish, its waiting ones wait (every process)."""
    _admin(caller, "pause a provider")
    check_target(svc, target)
    return await svc.store.pause(target, reason)


async def resume(svc: Services, target: str, caller: Caller = Caller()) -> bool:
    _admin(caller, "resume a provider")
    check_target(svc, target)
    resumed = await svc.store.resume(target)
    svc.queue.wakeup.set()  # this process's dispatcher looks at once
    return resumed


async def held(svc: Services, caller: Caller = Caller()) -> list[Job]:
    _admin(caller, "list quarantined jobs")
    return await svc.store.held_jobs()


async def release(svc: Services, job_id: str, caller: Caller = Caller()) -> Job:
    """Let a quarantined job run again (its crash count starts over)."""
    _admin(caller, "release a quarantined job")
    job = await _owned(svc, job_id, caller, "release")
    released = await svc.store.release_held(job.id)
    if released is None:
        raise Conflict(f"generation {job_id} is not quarantined")
    svc.queue.wakeup.set()
    return released
