"""The statements of backend slots (:mod:`pixelpipe.jobs.slots`), built once.

Each reads the jobs table through an alias of its own: a subquery on ``jobs`` inside an
``UPDATE jobs`` would otherwise be correlated with the row being updated.
"""

from __future__ import annotations

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.sql.selectable import NamedFromClause

from pixelpipe.jobs.model import HOLDING, JobStatus
from pixelpipe.jobs.slots import LINE_REFRESH
from pixelpipe.jobs.tables import jobs

# statuses as SQL literals, not binds: compiled_sql runs these with the caller's params only
_HOLDING: list[ColumnElement[str]] = [literal_column(f"'{s}'") for s in sorted(HOLDING)]
_QUEUED: ColumnElement[str] = literal_column(f"'{JobStatus.QUEUED}'")


def _in_line(t: NamedFromClause) -> list[ColumnElement[bool]]:
    """The WHERE terms of jobs in backend ``w_backend``'s line (``t``: an alias of jobs). A job
    has a ``slot_wait_since`` only while queued (every other transition clears it: jobs/rules.py),
    so these terms match the partial index ``ix_jobs_slot_line`` and nothing else."""
    return [
        t.c.provider == bindparam("w_backend"),
        t.c.slot_wait_since.is_not(None),
        t.c.held_at.is_(None),  # a quarantined job waits for the operator, not in the line
    ]


_busy = jobs.alias("busy")
BUSY = (
    select(func.count())
    .select_from(_busy)
    .where(
        _busy.c.provider == bindparam("w_backend"),
        _busy.c.status.in_(_HOLDING),
        _busy.c.held_at.is_(None),  # a quarantined job gives its slot up (docs/queue.md)
    )
)

_ahead = jobs.alias("ahead")
_place: BindParameter[float] = bindparam("w_place")
_id: BindParameter[str] = bindparam("w_id")
_priority: BindParameter[int] = bindparam("w_priority")
# ahead in line: a higher priority, or the same one and joined earlier (jobs/order.py)
AHEAD = (
    select(func.count())
    .select_from(_ahead)
    .where(
        *_in_line(_ahead),
        _ahead.c.id != _id,
        or_(
            _ahead.c.priority > _priority,
            and_(
                _ahead.c.priority == _priority,
                or_(
                    _ahead.c.slot_wait_since < _place,
                    and_(_ahead.c.slot_wait_since == _place, _ahead.c.id < _id),
                ),
            ),
        ),
    )
)

# joining (or staying in) the line: only while the job is still queued and leased by its owner
JOIN_LINE = update(jobs).where(
    jobs.c.id == _id,
    jobs.c.status == _QUEUED,
    jobs.c.lease_owner == bindparam("w_owner"),
)

_line = jobs.alias("line")
FIRST_IN_LINE = (
    select(_line.c.id, _line.c.provider_state)
    .where(*_in_line(_line))
    .order_by(_line.c.priority.desc(), _line.c.slot_wait_since, _line.c.id)
    .limit(literal_column(str(LINE_REFRESH)))
)
# a job's place in line, told: only while it is still in that line
SET_PLACE = update(jobs).where(
    jobs.c.id == _id, jobs.c.status == _QUEUED, jobs.c.slot_wait_since.is_not(None)
)

_freed = jobs.alias("freed")
_freed_backend = (
    select(_freed.c.provider)
    .where(_freed.c.id == bindparam("w_id"), _freed.c.status.in_(_HOLDING))
    .scalar_subquery()
)
_sleeper = jobs.alias("sleeper")
_first_sleeper = (
    select(_sleeper.c.id)
    .where(
        _sleeper.c.provider == _freed_backend,
        _sleeper.c.slot_wait_since.is_not(None),
        _sleeper.c.held_at.is_(None),
        _sleeper.c.next_run_at > bindparam("w_now"),
    )
    .order_by(_sleeper.c.priority.desc(), _sleeper.c.slot_wait_since, _sleeper.c.id)
    .limit(literal_column("1"))  # literals: compiled_sql binds only the caller's params
    .offset(literal_column("0"))
    .scalar_subquery()
)
# run before the transition of job ``w_id`` out of submitting/waiting: the first job of its
# backend's line that is still asleep becomes due (SET next_run_at = now)
WAKE_NEXT_IN_LINE = update(jobs).where(jobs.c.id == _first_sleeper)

_waiting = jobs.alias("waiting")
LINE_LENGTH = select(func.count()).select_from(_waiting).where(*_in_line(_waiting))
