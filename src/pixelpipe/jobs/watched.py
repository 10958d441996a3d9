"""The jobs that readers in this process follow live, for news that is no event of the store: a
waiting job's place in the queue, which moves as the jobs ahead of it finish
(:mod:`pixelpipe.usecases.queue_watch` reads the places once a second for all of them; each
reader's stream takes what it has not shown yet: :func:`pixelpipe.usecases.events.follow_job`)."""

from __future__ import annotations

import asyncio

from pixelpipe.jobs.model import Job


class Moves:
    """One reader's view of its job's place: the newest place it was not shown yet."""

    def __init__(self) -> None:
        self.shown: int | None = None  # the place the reader saw last
        self.pending: Job | None = None  # the job at a new place, not yet shown
        self.changed = asyncio.Event()

    def show(self, position: int) -> None:
        """The reader was shown ``position`` (by an event of the store, or by :meth:`take`)."""
        self.shown = position
        if self.pending is not None and _position(self.pending) == position:
            self.take()

    def offer(self, job: Job) -> None:
        """``job`` as it is now, with its place as its progress: news when the place moved."""
        position = _position(job)
        if position is None or position == self.shown:
            return
        self.pending = job
        self.changed.set()

    def take(self) -> Job | None:
        """The job at its new place (None: no news), once."""
        job, self.pending = self.pending, None
        self.changed.clear()
        if job is not None:
            self.shown = _position(job)
        return job


class WatchedJobs:
    """Per process: which jobs have live readers, and the one task that tells them their places."""

    def __init__(self) -> None:
        self._readers: dict[str, set[Moves]] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, job_id: str) -> Moves:
        moves = Moves()
        self._readers.setdefault(job_id, set()).add(moves)
        return moves

    def discard(self, job_id: str, moves: Moves) -> None:
        readers = self._readers.get(job_id)
        if readers is not None:
            readers.discard(moves)
            if not readers:
                del self._readers[job_id]

    def ids(self) -> list[str]:
        return list(self._readers)

    def readers(self, job_id: str) -> list[Moves]:
        return list(self._readers.get(job_id, ()))


def _position(job: Job) -> int | None:
    position = (job.provider_state.get("progress") or {}).get("queue_position")
    return position if isinstance(position, int) else None
