"""Embedded queue: the jobs table *is* the queue; enqueue just wakes the in-process dispatcher.

A submit in the same process can do better than wake it: when the dispatcher has a free slot,
the job is inserted already leased to it and handed over in memory (:class:`Handoff`), which
saves the dispatcher's claim (a read and a write) and a wake-up per job. The lease makes this
safe: if the process dies, the lease expires and the row is claimed like any other.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pixelpipe.jobs.model import Job


class Handoff(Protocol):
    owner: str  # the lease owner name jobs handed over are inserted with

    def take_slot(self) -> bool:
        """Promise a slot to a job about to be created; False when there is no room."""
        ...

    def give_slot(self, job: Job | None) -> None:
        """Run ``job`` (created, leased to ``owner``) in the promised slot, or give it back."""
        ...


class LocalQueue:
    def __init__(self) -> None:
        self.wakeup = asyncio.Event()
        self.handoff: Handoff | None = None

    def attach(self, handoff: Handoff | None) -> None:
        """The in-process dispatcher registers itself here (None when it stops)."""
        self.handoff = handoff

    async def enqueue(self, job_id: str, *, delay_s: float = 0.0) -> None:
        self.wakeup.set()

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self.wakeup.set()
