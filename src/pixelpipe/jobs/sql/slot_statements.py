"""The statements of backend slots (:mod:`pixelpipe.jobs.slots`), built once.

Each reads the jobs table through an alias of its own: a subquery on ``jobs`` inside an
``UPDATE jobs`` would otherwise be correlated with the row being updated.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Float,
    Select,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.sql.selectable import NamedFromClause, Subquery

from pixelpipe.jobs.model import HOLDING, JobStatus
from pixelpipe.jobs.slots import LINE_REFRESH
from pixelpipe.jobs.tables import jobs

# statuses as SQL literals, not binds: compiled_sql runs these with the caller's params only
_HOLDING: list[ColumnElement[str]] = [literal_column(f"'{s}'") for s in sorted(HOLDING)]
_QUEUED: ColumnElement[str] = literal_column(f"'{JobStatus.QUEUED}'")


def _in_line(
    t: NamedFromClause, backend: ColumnElement[str] | None = None
) -> list[ColumnElement[bool]]:
    """The WHERE terms of jobs in ``backend``'s line (``t``: an alias of jobs; ``backend``: the
    bind ``w_backend`` unless given). A job has a ``slot_wait_since`` only while queued (every
    other transition clears it: jobs/rules.py), so these terms match
    the partial index ``ix_jobs_slot_line`` and nothing else."""
    return [
        t.c.provider == (bindparam("w_backend") if backend is None else backend),
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

_id: BindParameter[str] = bindparam("w_id")


def _key(t: NamedFromClause) -> ColumnElement[str]:
    return func.coalesce(t.c.api_key_id, literal_column("''"))  # auth off: one key (order.py)


def _ranked_line(
    backend: ColumnElement[str], *, joining: bool, gone: BindParameter[str] | None = None
) -> Subquery:
    """``backend``'s line in :func:`~pixelpipe.jobs.slots.line_order` — priority, fair share,
    the key's backlog, then who joined first — as rows (id, next_run_at, pos), ``pos`` 1 =
    next (narrow rows: the window sorts the whole line).
    ``joining``: the job ``w_id`` counts as in line (at ``w_place`` when not in it yet);
    ``gone``: a run leaving its slot, no longer counted against its key."""
    held_t = jobs.alias("flying")
    held = (
        select(_key(held_t).label("k"), func.count().label("n"))
        .where(
            held_t.c.provider == backend,
            held_t.c.status.in_(_HOLDING),  # the partial index ix_jobs_holding, not the history
            held_t.c.held_at.is_(None),
            *([] if gone is None else [held_t.c.id != gone]),
        )
        .group_by(_key(held_t))
        .subquery("held_n")
    )
    ln, me = jobs.alias("ln"), jobs.alias("me")

    def rows(t: NamedFromClause, since: ColumnElement[float]) -> Select[Any]:
        one: ColumnElement[int] = literal_column("1")  # compiled_sql binds the caller's only
        share = case((t.c.share < one, one), else_=t.c.share)
        return select(t.c.id, t.c.next_run_at, t.c.priority).add_columns(
            since.label("since"), share.label("share"), _key(t).label("k")
        )

    in_line = rows(ln, ln.c.slot_wait_since).where(*_in_line(ln, backend))
    joins = rows(me, bindparam("w_place", type_=Float)).where(
        me.c.id == _id, me.c.slot_wait_since.is_(None)
    )
    members = (union_all(in_line, joins) if joining else in_line).subquery("members")
    m = members.c
    by_key = {"partition_by": m.k, "order_by": (m.priority.desc(), m.since, m.id)}
    rank = func.row_number().over(**by_key)  # type: ignore[arg-type]
    backlog = func.count().over(**by_key, rows=(None, None))  # type: ignore[arg-type]
    keyed = (
        select(m.id, m.next_run_at, m.priority, m.since, m.share, m.k)
        .add_columns((rank - literal_column("1")).label("r"), backlog.label("backlog"))
        .subquery("keyed")
    )
    k = keyed.c
    fair = cast(func.coalesce(held.c.n, literal_column("0")) + k.r, Float) / k.share
    order = (k.priority.desc(), fair, k.backlog, k.since, k.id)
    pos = func.row_number().over(order_by=order).label("pos")
    return (
        select(k.id, k.next_run_at, pos)
        .select_from(keyed.outerjoin(held, held.c.k == k.k))
        .subquery("ranked")
    )


_joining = _ranked_line(bindparam("w_backend"), joining=True)
# the place of job ``w_id`` in line (as if it joined now, when it is not in it yet)
POSITION = select(_joining.c.pos).where(_joining.c.id == _id)
_line = _ranked_line(bindparam("w_backend"), joining=False)
# the line, in order
LINE_IDS = select(_line.c.id).order_by(_line.c.pos)
# the first jobs of the line, in order
_first = (
    select(_line.c.id, _line.c.pos)
    .order_by(_line.c.pos)
    .limit(literal_column(str(LINE_REFRESH)))
    .subquery("first")
)
_told = jobs.alias("told")
FIRST_IN_LINE = (
    select(_told.c.id, _told.c.provider_state)
    .join(_first, _first.c.id == _told.c.id)
    .order_by(_first.c.pos)
)

# joining (or staying in) the line: only while the job is still queued and leased by its owner
JOIN_LINE = update(jobs).where(
    jobs.c.id == _id,
    jobs.c.status == _QUEUED,
    jobs.c.lease_owner == bindparam("w_owner"),
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
_sleepers = _ranked_line(_freed_backend, joining=False, gone=bindparam("w_id"))
_first_sleeper = (
    select(_sleepers.c.id)
    .where(_sleepers.c.next_run_at > bindparam("w_now"))
    .order_by(_sleepers.c.pos)
    .limit(literal_column("1"))  # literals: compiled_sql binds only the caller's params
    .offset(literal_column("0"))
    .scalar_subquery()
)
# run before the transition of job ``w_id`` out of submitting/waiting: the first job of its
# backend's line (in the order it has once that run left its slot) still asleep becomes due
# (SET next_run_at = now)
WAKE_NEXT_IN_LINE = update(jobs).where(jobs.c.id == _first_sleeper)

_waiting = jobs.alias("waiting")
LINE_LENGTH = select(func.count()).select_from(_waiting).where(*_in_line(_waiting))
