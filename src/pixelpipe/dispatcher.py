"""The embedded dispatcher and sweeper: an in-process worker pool over the jobs table.

The dispatcher leases due rows (``next_run_at <= now``, lease free or expired) in the queue's
order (priority, fair share between API keys: :mod:`pixelpipe.jobs.order`) and runs one step for
each, at most ``worker_concurrency`` at a time; it sleeps until woken by a new job or until the
next row is due. The sweeper (same process when embedded; ``pixelpipe sweeper`` when scaled out)
fails jobs past their deadline and makes silent waiting jobs due for a poll. A crash loses nothing:
leases expire and the rows are claimed again; a job whose steps crash ``queue_poison_after``
times is quarantined instead (docs/queue.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from pixelpipe.errors import JobTimedOut
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.store import Opening
from pixelpipe.services import Services
from pixelpipe.worker import Worker
from pixelpipe.worker.kept import drop_kept_outputs
from pixelpipe.worker.moderation import sweep_quarantine
from pixelpipe.worker.submit import opening

log = logging.getLogger("pixelpipe.dispatcher")
IDLE_MAX_S = 1.0
ROUND_RETRY_S = 0.5


class Dispatcher:
    def __init__(self, svc: Services, wakeup: asyncio.Event, *, owner: str | None = None) -> None:
        self.svc = svc
        self.wakeup = wakeup
        self.owner = owner or f"{svc.instance}:dispatcher"
        self.worker = Worker(svc, self.owner)
        self.capacity = svc.settings.worker_concurrency
        self.running: set[asyncio.Task[None]] = set()
        self.active: dict[str, asyncio.Task[None]] = {}  # job id -> the step running it here
        # jobs claimed again here while their step still ran: their lease goes back once it ends
        self._claimed_again: set[str] = set()
        self._promised = 0  # slots taken by in-process submits whose job is being inserted
        # the last round left due rows unclaimed (no free slot, or a full batch): a step ending
        # must wake the loop to claim them
        self._behind = False
        self._stopping = False
        if wakeup is svc.queue.wakeup:
            svc.queue.attach(self)

    # -- in-process hand-over (queue.local.Handoff) --
    def _free(self) -> int:
        """Steps that may start now: capacity less running steps and promised slots."""
        return self.capacity - len(self.running) - self._promised

    def take_slot(self) -> bool:
        if self._stopping or self._free() <= 0:
            return False
        self._promised += 1
        return True

    async def opening(self, job: Job) -> Opening | None:
        return await opening(self.worker.ctx, job)

    def give_slot(self, job: Job | None) -> None:
        self._promised -= 1
        if job is not None:
            if job.status is JobStatus.SUBMITTING:  # its attempt was opened with its admission
                self.worker.ctx.opened.add(job.id)
            self._start(job)
        else:
            self.wakeup.set()  # the slot is free again

    async def run(self) -> None:
        beat = asyncio.create_task(self._heartbeat())
        try:
            while not self._stopping:
                try:
                    await self._round()
                except Exception:
                    # the database is busy or unreachable (or a bug): this loop is the process's
                    # only worker, so it must outlive any error; leases keep the rows safe
                    log.exception("dispatcher round failed; retrying in %.1f s", ROUND_RETRY_S)
                    await asyncio.sleep(ROUND_RETRY_S)
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    async def _heartbeat(self) -> None:
        """Renew the leases of the steps running here, so that a slow step (a provider taking its
        time, a busy CPU) is never mistaken for a dead worker and run a second time elsewhere."""
        interval = max(0.05, self.svc.settings.lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            ids = list(self.active)
            if not ids:
                continue
            try:
                await self.svc.store.renew_leases(ids, self.owner, self.svc.settings.lease_s)
            except Exception as exc:  # e.g. the database is locked: try again next beat
                log.warning("lease renewal failed: %s", type(exc).__name__)

    async def _round(self) -> None:
        free = self._free()
        jobs = []
        if free > 0:
            jobs = await self._claim(free)
        self._behind = free <= 0 or len(jobs) >= free
        for job in jobs:
            self._start(job)
        # a full batch means more may be due right now; otherwise (or when queue deliveries have
        # filled the slots meanwhile, which can make ``free`` negative) wait to be woken
        if free <= 0 or len(jobs) < free:
            await self._sleep()

    async def offer(self, job_id: str) -> bool:
        """A queue message named ``job_id``: if there is room, claim and run the step that is
        first in the queue's order now (:mod:`pixelpipe.jobs.order`) — ``job_id`` itself only
        when its turn has come, so a message never lets a job jump the line.

        Without room (or with nothing due) nothing happens: the table scan in :meth:`run` claims
        the row once it is due and a slot is free.
        """
        if self._stopping or self._free() <= 0:
            return False
        jobs = await self._claim(1)
        for job in jobs:
            self._start(job)
        return bool(jobs)

    async def _claim(self, limit: int) -> list[Job]:
        settings = self.svc.settings
        return await self.svc.store.claim_due(
            self.owner,
            limit=limit,
            lease_s=settings.lease_s,
            poison_after=settings.queue_poison_after,
        )

    def _start(self, job: Job) -> None:
        if job.id in self.active:
            # claimed again while its step still runs here: the step's last write made it due at
            # once (or its lease lapsed while the database was busy). Never two steps of one job
            # at once — and never keep that lease with no step behind it (the job would sit until
            # the lease expired): it goes back when the step ends, and the next round takes it
            self._claimed_again.add(job.id)
            return
        task = asyncio.create_task(self._run(job))
        self.running.add(task)
        self.active[job.id] = task
        task.add_done_callback(self.running.discard)
        task.add_done_callback(lambda _: self._ended(job.id))

    def _ended(self, job_id: str) -> None:
        self.active.pop(job_id, None)
        if job_id in self._claimed_again:
            self._claimed_again.discard(job_id)
            task = asyncio.create_task(self._hand_back(job_id))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _hand_back(self, job_id: str) -> None:
        try:
            await self.svc.store.release(job_id, self.owner)
        except Exception as exc:  # e.g. the database is locked: the lease expires instead
            log.warning("handing back the lease of %s failed: %s", job_id, type(exc).__name__)
        finally:
            self.wakeup.set()

    async def _run(self, job: Job) -> None:
        ended = False
        try:
            ended = await self.worker.run_step(job)
        except Exception:
            # the step could not even record its failure (e.g. the database stayed locked): the
            # row keeps its lease until it expires, then it is claimed and the step runs again
            log.warning(
                "step for %s ended with an error; its lease will expire", job.id, exc_info=True
            )
        finally:
            if not (ended and self._nothing_new(job)):
                self.wakeup.set()

    def _nothing_new(self, job: Job) -> bool:
        """A step that ended its job made nothing due that the loop has not seen: no row of its
        own (it is terminal), none of a backend's line (a hosted provider has no slots whose
        release wakes the next in line), and the last round claimed every due row. Then the
        loop need not scan the table again (a claim and a read per image at one request at a
        time); it sleeps on until the next row it knows of is due, or a new job wakes it."""
        return not self._behind and (job.provider or "") not in self.svc.slots

    async def _sleep(self) -> None:
        self.wakeup.clear()  # before looking: a wake-up after this point is not lost
        nxt = await self.svc.store.next_due_at()
        timeout = IDLE_MAX_S if nxt is None else min(IDLE_MAX_S, max(0.0, nxt - time.time()))
        if len(self.running) >= self.capacity:
            timeout = IDLE_MAX_S  # full: wait for a step to finish (it sets wakeup)
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout)

    async def stop(self, *, grace_s: float = 10.0) -> None:
        """Finish in-flight steps (up to ``grace_s``), then hand remaining leases back."""
        self._stopping = True
        if self.svc.queue.handoff is self:
            self.svc.queue.attach(None)
        self.wakeup.set()
        if self.running:
            await asyncio.wait(self.running, timeout=grace_s)
        await self.svc.store.release_all(self.owner)


async def sweep_once(svc: Services) -> tuple[int, int]:
    """Fail jobs past their deadline; make waiting jobs whose webhook is overdue due for a poll."""
    now = time.time()
    late, silent = await svc.store.overdue(now)
    for job in late:
        err = JobTimedOut(
            f"no result within {svc.settings.job_deadline_s:g} s (last state: {job.status})"
        )
        # one group commit: a crash cannot leave the failed job holding its reservation
        moved, _ = await asyncio.gather(
            svc.store.transition(
                job.id, job.status, JobStatus.FAILED, error_code=err.code, error_detail=err.detail
            ),
            svc.ledger.release(job.id),
        )
        if moved is not None:
            await drop_kept_outputs(svc, moved)
        if moved is not None and svc.completion_hooks is not None:
            await svc.completion_hooks.job_finished(moved)
    for job in silent:
        await svc.store.update(job.id, next_run_at=now)
        await svc.store.add_event(job.id, "sweeper", {"reason": "webhook overdue; polling"})
        await svc.queue.enqueue(job.id)  # a worker in another process polls it now
    if svc.moderation.moderator is not None:  # blocked images past their retention
        await sweep_quarantine(svc, now)
    return len(late), len(silent)


async def run_sweeper(svc: Services, wakeup: asyncio.Event | None = None) -> None:
    while True:
        try:
            _, polled = await sweep_once(svc)
            if polled and wakeup is not None:
                wakeup.set()
        except Exception:
            log.exception("sweep failed; will try again")
        await asyncio.sleep(svc.settings.sweep_interval_s)
