"""The Queue boundary. At-least-once delivery comes from the job row and the sweeper; the queue
is a latency optimisation (a lost message only delays a job until the next sweep)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Queue(Protocol):
    async def enqueue(self, job_id: str, *, delay_s: float = 0.0) -> None: ...

    async def aclose(self) -> None: ...
