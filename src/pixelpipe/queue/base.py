"""The Queue boundary. At-least-once delivery comes from the job row and the sweeper; the queue
is a latency optimisation (a lost message only delays a job until the next sweep).

Two kinds: **embedded** (:class:`~pixelpipe.queue.local.LocalQueue`: the jobs table is the queue,
``enqueue`` wakes this process's dispatcher, and a submit may hand a job over in memory) and
**message** queues (:class:`~pixelpipe.queue.saq.SaqQueue`: job ids cross processes; a worker
process runs a :meth:`Queue.consumer`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pixelpipe.jobs.model import Job
    from pixelpipe.jobs.store import Opening

# What a worker does with a delivered job id: claim the row and run one step (or leave it to the
# table scan when it has no room). Returning normally acknowledges the message.
StepHandler = Callable[[str], Awaitable[object]]


class Handoff(Protocol):
    """This process's dispatcher, as a submit sees it when it hands a job over in memory."""

    owner: str  # the lease owner name jobs handed over are inserted with

    def take_slot(self) -> bool:
        """Promise a slot to a job about to be created; False when there is no room."""
        ...

    async def opening(self, job: Job) -> Opening | None:
        """For ``job`` (about to be created in a promised slot, leased to ``owner``): the move to
        submitting its admission may make, when it can be sent to its provider at once; None
        when it cannot (it is inserted queued and its step decides)."""
        ...

    def give_slot(self, job: Job | None) -> None:
        """Run ``job`` (created, leased to ``owner``; submitting when its admission made the
        :meth:`opening`) in the promised slot, or give it back."""
        ...


class Consumer(Protocol):
    """Takes a message queue's messages in this process (``pixelpipe worker``)."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stop taking messages; the rows stay claimable by others."""
        ...


@runtime_checkable
class Queue(Protocol):
    # True: the jobs table is the queue and this process's dispatcher runs the steps (the API
    # and ``Pipeline`` start one beside them); False: worker processes take the messages.
    embedded: bool
    # Set when a job became due in this process: the dispatcher of this process wakes on it.
    wakeup: asyncio.Event
    # This process's dispatcher when it takes jobs over in memory (embedded only), else None.
    handoff: Handoff | None

    def attach(self, handoff: Handoff | None) -> None:
        """The in-process dispatcher registers itself (None when it stops); a message queue,
        whose jobs cross processes, ignores it."""
        ...

    async def connect(self) -> None:
        """Open the backend now, so a wrong URL fails at start-up, not on the first request."""
        ...

    def consumer(
        self, handler: StepHandler, *, concurrency: int, worker_id: str | None
    ) -> Consumer | None:
        """What takes this queue's messages in a worker process (None: the queue has none, the
        dispatcher's table scan is the consumer)."""
        ...

    async def enqueue(self, job_id: str, *, delay_s: float = 0.0) -> None: ...

    async def ping(self) -> None:
        """Raise if the queue's backend does not answer (readiness)."""
        ...

    async def aclose(self) -> None: ...
