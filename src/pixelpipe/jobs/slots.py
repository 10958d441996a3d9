"""Backend slots: never more runs in flight on a self-hosted backend than it takes at once.

A backend of the operator's catalog takes ``slots`` runs at once. Which runs hold its slots is read
from the jobs themselves, not kept in a table of its own: a job holds one while it is
``submitting`` or ``waiting`` on that backend (:data:`~pixelpipe.jobs.model.HOLDING`), so a crash
or a lost lease can never leak a slot, and every process (API, workers) sharing the database sees
the same count.

A job about to be submitted takes a slot only when one is free *and* no job ahead of it in the
line is still waiting. The line's order is the claim's (:mod:`pixelpipe.jobs.order`) over the
backend's slots (:func:`line_order`): a higher priority first; within one, fair share between API
keys — ``(the key's runs holding a slot of this backend + the job's place among its key's jobs
in line) / the key's share``, lowest first — so one key's long batch cannot starve another key's
request; among equals the key with fewer jobs in line, then who found the backend full first
(docs/queue.md). Otherwise it joins the
backend's line: ``slot_wait_since`` keeps its place, its ``progress`` shows ``queue_position``
(1 = next), and it sleeps. A job that leaves ``submitting``/``waiting`` wakes the first sleeper of
its backend's line in the same write; a sleeper also looks again after :func:`recheck_after_s`, in
case that wake-up was spent (the woken job was canceled meanwhile). A job that leaves the line
for a slot tells the next :data:`LINE_REFRESH` jobs their new places (a ``progress`` event each);
the others learn theirs when they look again, and a reader of the job is shown it live
(:meth:`~pixelpipe.jobs.store.BackendSlots.line_position`). The check, the move to
``submitting`` and joining the line are one write: serialised by SQLite's single writer, and on
PostgreSQL by a transaction-scoped advisory lock per backend.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pixelpipe.jobs.model import HOLDING, Job, JobStatus
from pixelpipe.jobs.order import key_of

LINE_REFRESH = 10  # when a job leaves a line for a slot, the next this many are told their place
FRONT_RECHECK_S = 5.0  # the first jobs of a line look again this often (a spent wake-up)
BACK_RECHECK_S = 60.0  # the rest: they are woken in turn, this only bounds a lost wake-up
_NO_PLACE = float("inf")  # a job not yet in line stands behind everyone in it


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """A job's wish to run on ``backend``, which takes ``slots`` runs at once."""

    backend: str
    slots: int


@dataclass(frozen=True, slots=True)
class InLine:
    """No slot for the job now: it waits in its backend's line at ``position`` (1 = next)."""

    position: int
    waiting_since: float


@dataclass(frozen=True, slots=True)
class SlotUse:
    """A backend's slots as the jobs show them: runs in flight and jobs in line."""

    busy: int
    waiting: int


def place(wait_since: float | None) -> float:
    """A job's place in its backend's line (a job not in line: behind all)."""
    return _NO_PLACE if wait_since is None else wait_since


def has_turn(busy: int, ahead: int, slots: int) -> bool:
    """May a job with ``ahead`` jobs in line before it take a slot of a backend running ``busy``?
    Each job ahead is owed a slot first."""
    return busy + ahead < slots


def kept_place(job: Job, busy: int, slots: int) -> int | None:
    """The place a job already in line keeps when it looks again while every slot is taken: no
    job may start then whatever its place, so its line is not ranked again (that is a read of
    the whole line); its readers see its place live (:meth:`BackendSlots.line_position`)."""
    if busy < slots or job.slot_wait_since is None:
        return None
    position = (job.provider_state.get("progress") or {}).get("queue_position")
    return position if isinstance(position, int) and position > 0 else None


def frees_slot(expected: Iterable[JobStatus], target: JobStatus) -> bool:
    """May a transition from one of ``expected`` to ``target`` free a slot (wake the line)?"""
    return target not in HOLDING and any(s in HOLDING for s in expected)


def recheck_after_s(position: int, slots: int) -> float:
    """How long a job in line sleeps before it looks again, unless woken sooner."""
    return FRONT_RECHECK_S if position <= 2 * slots else BACK_RECHECK_S


def in_line(job: Job) -> bool:
    """Is ``job`` waiting in a backend's line?"""
    return job.status is JobStatus.QUEUED and job.slot_wait_since is not None


def line_progress(state: dict[str, Any], backend: str, position: int) -> dict[str, Any]:
    """The job's provider_state with its place in line as its progress."""
    return {**state, "progress": {"queue_position": position, "backend": backend}}


def taking_slot(job: Job, fields: dict[str, Any]) -> dict[str, Any]:
    """What a job taking a slot sets besides ``fields``: out of line, its place no longer its
    progress."""
    values = {**fields, "slot_wait_since": None}
    state = out_of_line(job.provider_state)
    if state is not job.provider_state:
        values["provider_state"] = state
    return values


def out_of_line(state: dict[str, Any]) -> dict[str, Any]:
    """The job's provider_state once it left the line (its place was its progress)."""
    progress = state.get("progress") or {}
    if "queue_position" not in progress or "backend" not in progress:
        return state
    return {k: v for k, v in state.items() if k != "progress"}


def holds_slot(job: Job, backend: str) -> bool:
    """Does ``job`` hold one of ``backend``'s slots (a quarantined job gives its slot up)?"""
    return job.provider == backend and job.status in HOLDING and job.held_at is None


def line_order(line: Iterable[Job], holding: Counter[str]) -> list[Job]:
    """The jobs of a backend's line in the order they get its freed slots: priority, then fair
    share (``(holding[key] + place among the key's jobs in line) / share``), then the key with
    fewer jobs in line (one request before the next of a long batch), then who joined first
    (a job not yet in line: last), then id. ``holding``: each key's runs in the backend's slots."""
    line = sorted(line, key=lambda j: (-j.priority, place(j.slot_wait_since), j.id))
    backlog = Counter(key_of(j) for j in line)
    rank: Counter[str] = Counter()
    keyed: list[tuple[tuple[int, float, int, float, str], Job]] = []
    for job in line:
        key = key_of(job)
        fair = (holding[key] + rank[key]) / max(1, job.share)
        rank[key] += 1
        order = (-job.priority, fair, backlog[key], place(job.slot_wait_since), job.id)
        keyed.append((order, job))
    keyed.sort(key=lambda pair: pair[0])
    return [job for _, job in keyed]
