"""The queue's statements (:mod:`pixelpipe.jobs.order`): the due candidates of a claim, each
key's jobs in flight, and the paused providers."""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    bindparam,
    case,
    func,
    literal_column,
    not_,
    or_,
    select,
)

from pixelpipe.jobs.model import ACTIVE, JobStatus
from pixelpipe.jobs.sql.statements import RUNNABLE_STATUSES
from pixelpipe.jobs.tables import jobs, queue_pauses

_QUEUED = str(JobStatus.QUEUED)
STARTED_STATUSES = sorted(str(s) for s in ACTIVE if s is not JobStatus.QUEUED)
_KEY = func.coalesce(jobs.c.api_key_id, literal_column("''"))
_FRESH = case((jobs.c.status == _QUEUED, 1), else_=0)
PAUSED_TARGETS = select(queue_pauses.c.target)


def due_terms(now: ColumnElement[float] | float) -> list[ColumnElement[bool]]:
    """The WHERE terms of a due row: runnable, its time come, no live lease, and not a queued
    job of a paused provider."""
    return [
        jobs.c.status.in_(RUNNABLE_STATUSES),
        jobs.c.next_run_at <= now,
        or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
        not_paused(),
    ]


def not_paused() -> ColumnElement[bool]:
    """Not a queued job of a paused provider or backend (a started one goes on)."""
    return or_(
        jobs.c.status != _QUEUED,
        not_(func.coalesce(jobs.c.provider, "").in_(PAUSED_TARGETS)),
    )


_NOW = bindparam("w_now", type_=jobs.c.next_run_at.type)
_rn = (
    func.row_number()
    .over(
        partition_by=[_FRESH, _KEY],
        order_by=[jobs.c.priority.desc(), jobs.c.next_run_at, jobs.c.id],
    )
    .label("rn")
)
_candidates = (
    select(
        jobs.c.id,
        jobs.c.status,
        jobs.c.priority,
        jobs.c.share,
        jobs.c.api_key_id,
        jobs.c.next_run_at,
        jobs.c.lease_owner,
        jobs.c.crashes,
        jobs.c.provider,
        _rn,
    )
    .where(*due_terms(_NOW))
    .subquery("candidates")
)
# each (kind, key)'s first ``w_limit`` due jobs: no claim of ``w_limit`` takes more from one
CANDIDATES = select(_candidates).where(_candidates.c.rn <= bindparam("w_limit"))

# each key's jobs using capacity now: started (past queued), or queued and claimed
RUNNING_STARTED = (
    select(_KEY, func.count())
    .where(jobs.c.status.in_(STARTED_STATUSES), jobs.c.held_at.is_(None))
    .group_by(_KEY)
)
RUNNING_CLAIMED = (
    select(_KEY, func.count())
    .where(jobs.c.status == _QUEUED, jobs.c.lease_expires_at >= _NOW)
    .group_by(_KEY)
)

# queued, not held, not claimed: the jobs waiting for their turn (an operator's view)
WAITING = select(
    jobs.c.id,
    jobs.c.status,
    jobs.c.api_key_id,
    jobs.c.priority,
    jobs.c.share,
    jobs.c.next_run_at,
    jobs.c.provider,
).where(
    jobs.c.status == _QUEUED,
    jobs.c.held_at.is_(None),
    or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < _NOW),
)
