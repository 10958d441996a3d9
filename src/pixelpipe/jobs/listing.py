"""The gallery's filters and sort orders on the job list (``JobRows.list_jobs(where=…)``).

Costs are exact micro-dollars; a job without a recorded cost (pending, unpriced) sorts as -1, below
every priced one, and is left out by a cost range. ``after`` is the position of the last job of the
previous page in the chosen order: ``(cost, id)`` for the cost orders, ``(0, id)`` for oldest first
(newest first keeps its plain ``before`` id cursor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pixelpipe.jobs.model import Job

Sort = Literal["newest", "oldest", "cost_desc", "cost_asc"]
SORTS: tuple[Sort, ...] = ("newest", "oldest", "cost_desc", "cost_asc")
NO_COST = -1


@dataclass(frozen=True, slots=True)
class JobFilter:
    provider: str | None = None
    created_from: float | None = None  # unix seconds, inclusive
    created_to: float | None = None  # unix seconds, exclusive
    cost_min: int | None = None  # micro-USD, inclusive
    cost_max: int | None = None  # micro-USD, inclusive
    ids: frozenset[str] | None = None  # only these jobs (a board, the favourites)
    sort: Sort = "newest"
    after: tuple[int, str] | None = None


def cost_of(job: Job) -> int:
    """The value the cost orders sort ``job`` by."""
    return job.cost_micros if job.cost_micros is not None else NO_COST


def sort_key(job: Job, sort: Sort) -> tuple[int, str]:
    """``job``'s position in ``sort``: what a cursor remembers."""
    return (cost_of(job), job.id) if sort.startswith("cost") else (0, job.id)


def keeps(where: JobFilter, job: Job) -> bool:
    """Whether ``job`` passes the filters of ``where`` (the memory store's reading of them)."""
    cost = job.cost_micros
    return (
        (where.provider is None or job.provider == where.provider)
        and (where.created_from is None or job.created_at >= where.created_from)
        and (where.created_to is None or job.created_at < where.created_to)
        and (where.cost_min is None or (cost is not None and cost >= where.cost_min))
        and (where.cost_max is None or (cost is not None and cost <= where.cost_max))
        and (where.ids is None or job.id in where.ids)
        and (where.after is None or _past(where, sort_key(job, where.sort)))
    )


def _past(where: JobFilter, key: tuple[int, str]) -> bool:
    assert where.after is not None
    if where.sort in ("oldest", "cost_asc"):
        return key > where.after
    return key < where.after
