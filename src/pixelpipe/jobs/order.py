"""The queue's order: which due jobs a worker claims first (docs/queue.md, ADR 0011).

Every claim ranks the due jobs by, in order:

1. **steps of runs already started first** — a job past ``queued`` (polling, fetching, storing)
   is served before any new run starts, so the queue never delays a run that is paid for;
2. **priority**, higher first (0-9; interactive requests 6, batches 3 by default: intake.py);
3. **fair share between API keys**: ``(running + rank) / share``, lowest first — ``running`` is
   the key's jobs in flight now (past ``queued``, or claimed), ``rank`` the job's place among
   its key's due jobs (0 = its next), ``share`` the key's weight (a key with share 2 gets twice
   the runs of a key with share 1 while both have work waiting). A key with a 2,000-job backlog and
   a key with one request are served alternately, not in arrival order;
4. then age (``next_run_at``), then id.

Jobs of a paused provider or backend that have not started (``queued``) are not due, nor are
quarantined jobs (``held_at``: no ``next_run_at``). The SQL store computes the same order in one
statement (:mod:`pixelpipe.jobs.sql.queue_statements`); the memory store with :func:`ranked`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pixelpipe.jobs.model import ACTIVE, Job, JobStatus

PRIORITY_MIN, PRIORITY_MAX = 0, 9
NO_KEY = ""  # jobs submitted with auth off share one key


def key_of(job: Job) -> str:
    return job.api_key_id or NO_KEY


def in_flight(job: Job, now: float) -> bool:
    """Does ``job`` use capacity now (started, or claimed by a live lease)?"""
    if job.status not in ACTIVE or job.held_at is not None:
        return False
    if job.status is not JobStatus.QUEUED:
        return True
    return job.lease_expires_at is not None and job.lease_expires_at >= now


def crash_reason(status: str, provider: str | None, crashes: int) -> str:
    """Why a job was quarantined (shown to the operator)."""
    where = f" on {provider}" if provider else ""
    times = "once" if crashes == 1 else f"{crashes} times"
    return (
        f"its step crashed {times} (the lease expired while a worker ran it; "
        f"last while {status}{where})"
    )


def lost_run_reason(provider: str | None, crashes: int) -> str:
    """Why a job whose backend lost its run too often was quarantined (shown to the operator)."""
    times = "once" if crashes == 1 else f"{crashes} times"
    return (
        f"its backend {provider or '?'} lost its run {times} "
        "(the backend crashed or restarted mid-run)"
    )


def running_per_key(jobs: Iterable[Job], now: float) -> Counter[str]:
    return Counter(key_of(j) for j in jobs if in_flight(j, now))


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the order reads of a due job."""

    id: str
    status: str
    api_key_id: str | None
    priority: int
    share: int
    next_run_at: float | None

    @classmethod
    def of(cls, job: Job) -> Candidate:
        return cls(job.id, job.status, job.api_key_id, job.priority, job.share, job.next_run_at)


def ranked(due: Iterable[Candidate], running: Counter[str]) -> list[str]:
    """The ids of ``due`` in claim order (see the module's docstring)."""
    groups: dict[tuple[int, str], list[Candidate]] = {}
    for c in sorted(due, key=lambda c: (-c.priority, c.next_run_at or 0.0, c.id)):
        fresh = 1 if c.status == JobStatus.QUEUED else 0
        groups.setdefault((fresh, c.api_key_id or NO_KEY), []).append(c)
    keyed: list[tuple[tuple[int, int, float, float, str], str]] = []
    for (fresh, key), group in groups.items():
        for rank, c in enumerate(group):
            fair = (running[key] + rank) / max(1, c.share)
            keyed.append(((fresh, -c.priority, fair, c.next_run_at or 0.0, c.id), c.id))
    keyed.sort()
    return [job_id for _, job_id in keyed]
