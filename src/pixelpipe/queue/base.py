"""The Queue boundary. At-least-once delivery comes from the job row and the sweeper; the queue
is a latency optimisation (a lost message only delays a job until the next sweep)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

# What a worker does with a delivered job id: claim the row and run one step (or leave it to the
# table scan when it has no room). Returning normally acknowledges the message.
StepHandler = Callable[[str], Awaitable[object]]


@runtime_checkable
class Queue(Protocol):
    async def enqueue(self, job_id: str, *, delay_s: float = 0.0) -> None: ...

    async def ping(self) -> None:
        """Raise if the queue's backend does not answer (readiness)."""
        ...

    async def aclose(self) -> None: ...
