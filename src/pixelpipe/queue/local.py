"""Embedded queue: the jobs table *is* the queue; enqueue just wakes the in-process dispatcher.

A submit in the same process can do better than wake it: when the dispatcher has a free slot,
the job is inserted already leased to it and handed over in memory (:class:`Handoff`), which
saves the dispatcher's claim (a read and a write) and a wake-up per job. The lease makes this
safe: if the process dies, the lease expires and the row is claimed like any other.
"""

from __future__ import annotations

import asyncio

from pixelpipe.queue.base import Consumer, Handoff, StepHandler


class LocalQueue:
    embedded = True

    def __init__(self) -> None:
        self.wakeup = asyncio.Event()
        self.handoff: Handoff | None = None

    def attach(self, handoff: Handoff | None) -> None:
        """The in-process dispatcher registers itself here (None when it stops)."""
        self.handoff = handoff

    async def connect(self) -> None:
        return None

    def consumer(
        self, handler: StepHandler, *, concurrency: int, worker_id: str | None
    ) -> Consumer | None:
        return None  # no messages: the dispatcher's table scan claims every due row

    async def enqueue(self, job_id: str, *, delay_s: float = 0.0) -> None:
        self.wakeup.set()

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self.wakeup.set()
