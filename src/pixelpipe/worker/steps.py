"""The worker: one step of one leased job, run under the one leased-step runner."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pixelpipe.errors import DatabaseUnavailable, InternalStepError, PixelpipeError
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.providers.base import ProviderUpdate
from pixelpipe.services import Services
from pixelpipe.worker import billing, failures, output, poll, submit
from pixelpipe.worker.context import StepContext

log = logging.getLogger("pixelpipe.worker")
_S = JobStatus


@dataclass
class StepEnd:
    """How a step ended: ``ended`` when its job reached a terminal status in it."""

    ended: bool = False


class Worker:
    """Runs one step of one leased job. Stateless apart from the services it was given."""

    def __init__(self, svc: Services, owner: str) -> None:
        self.svc = svc
        self.owner = owner
        self.ctx = StepContext(svc, owner)

    async def run_step(self, job: Job) -> bool:
        """Look at the job's status and do one thing: submit (queued/submitting), poll (waiting)
        or fetch+store (fetching/storing). True when the step ended the job (its terminal
        transition was made here): the job is due no more."""
        step = StepEnd()
        async with self.leased_step(job, end=step):
            if job.status in (_S.QUEUED, _S.SUBMITTING):
                await submit.submit(self.ctx, job)
            elif job.status is _S.WAITING:
                await poll.poll(self.ctx, job)
            elif job.status in (_S.FETCHING, _S.STORING):
                await output.fetch_and_store(self.ctx, job, None)
        return step.ended

    @asynccontextmanager
    async def leased_step(
        self,
        job: Job,
        *,
        on_crash: Callable[[], Awaitable[None]] | None = None,
        end: StepEnd | None = None,
    ) -> AsyncIterator[None]:
        """Run the body as a step of ``job``, which this worker has leased; give the lease back
        after it (unless the job ended: its terminal transition cleared the lease).

        A :class:`PixelpipeError` goes to the retry/failover policy. Any other exception is a
        crash: without ``on_crash`` it is logged and retried later like a step failure (a
        database error as ``database_unavailable``, not the provider's fault: no outage mark, no
        failover); with it, ``on_crash`` runs (still under the lease) and the exception goes on.
        Cancellation only gives the lease back. ``end``, when given, says afterwards whether the
        job ended in this step.
        """
        try:
            yield
        except PixelpipeError as exc:
            await failures.fail_or_retry(self.ctx, job, exc)
        except Exception as exc:
            if on_crash is not None:
                await on_crash()
                raise
            await failures.fail_or_retry(self.ctx, job, _crash_error(job, exc))
        finally:
            if job.id in self.ctx.ended:
                self.ctx.ended.discard(job.id)  # terminal: the lease went with the transition
                if end is not None:
                    end.ended = True
            else:
                await self.svc.store.release(job.id, self.owner)

    async def apply(self, job: Job, update: ProviderUpdate) -> None:
        """Act on what the provider says about the job's run (from a submit, poll or webhook)."""
        await poll.apply(self.ctx, job, update)

    async def accept_success(
        self, job: Job, update: ProviderUpdate, *, attempt: int | None = None
    ) -> Job | None:
        """Bill the run (once) and move the job to fetching with its outputs."""
        return await output.accept_success(self.ctx, job, update, attempt=attempt)

    async def record_attempt(
        self, job: Job, update: ProviderUpdate, attempt: int | None = None
    ) -> None:
        """A finished run's charge on its attempt's ledger row."""
        await billing.record_attempt(self.ctx, job, update, attempt)


def _crash_error(job: Job, exc: Exception) -> PixelpipeError:
    """What a step's unexpected exception is to the retry policy (logged here)."""
    if isinstance(exc, DBAPIError | PoolTimeout):
        # the database is locked or unreachable: retry the step later (if even this cannot be
        # written, the lease expires)
        log.warning("step for job %s hit a database error: %s", job.id, type(exc).__name__)
        return DatabaseUnavailable(f"database error: {exc.__class__.__name__}")
    log.exception("step failed for job %s", job.id)  # a bug: keep the job alive, log the trace
    return InternalStepError(f"internal error: {type(exc).__name__}")
