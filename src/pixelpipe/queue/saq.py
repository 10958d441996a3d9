"""Scale-out queue: SAQ on PostgreSQL carries job ids from API processes to worker processes.

The message is only a wake-up for one job: the row in ``jobs`` stays the source of truth. A worker
that receives ``job_id`` claims the row (``JobStore.claim``: atomic, lease-guarded) and runs one
step; a duplicate, late or lost message is therefore harmless — at worst a job waits for a
worker's table scan (``Dispatcher``), which claims every due row whatever the queue did.

Messages are keyed by job id and deleted when processed (``ttl=-1``), so while a message for a job
is pending another ``enqueue`` for the same job is absorbed by SAQ's ``ON CONFLICT``; once it has
been processed the next ``enqueue`` inserts a fresh one. Delivery uses LISTEN/NOTIFY (no polling
latency). SAQ creates its own tables (``saq_jobs``, ``saq_stats``, ``saq_versions``) on first
connect; that step is serialised across processes with an advisory lock, because SAQ's own guard
lets a concurrently starting process skip the creation and race ahead of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any

import psycopg
from saq import Queue as _SaqQueueBase
from saq import Worker as _SaqWorker

from pixelpipe.errors import ConfigError
from pixelpipe.queue.base import Handoff, StepHandler

log = logging.getLogger("pixelpipe.queue.saq")
if logging.getLogger("saq").level == logging.NOTSET:
    logging.getLogger("saq").setLevel(logging.WARNING)  # SAQ logs every message at INFO

STEP_FUNCTION = "pixelpipe.step"
QUEUE_NAME = "pixelpipe"
INIT_LOCK_KEY = 0x50495851  # "PIXQ": serialises SAQ's table creation across processes
MESSAGE_TIMEOUT_S = 30  # a handler only claims a row and hands it to the dispatcher
_PG_URL = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://…`` / ``postgres://…`` → ``postgresql://…`` (what psycopg takes)."""
    if not _PG_URL.match(url):
        raise ConfigError(
            f"PIXELPIPE_QUEUE_URL must be a PostgreSQL URL (postgresql://user:pass@host/db), "
            f"got scheme {url.split(':', 1)[0]!r}; leave it empty for the embedded dispatcher"
        )
    return _PG_URL.sub("postgresql://", url)


class SaqQueue:
    """Producer side (any process) plus :meth:`consumer` for ``pixelpipe worker`` processes."""

    embedded = False
    handoff: Handoff | None = None  # job ids cross processes: never handed over in memory

    def __init__(
        self, url: str, *, name: str = QUEUE_NAME, min_size: int = 1, max_size: int = 10
    ) -> None:
        self.dsn = libpq_url(url)
        self.saq: Any = _SaqQueueBase.from_url(
            self.dsn, name=name, min_size=min_size, max_size=max_size
        )
        self._connected = False
        self._lock = asyncio.Lock()
        self.wakeup = asyncio.Event()  # this process's dispatcher (messages wake it by offer)
        self.enqueued = 0  # observable by tests and benchmarks
        self.absorbed = 0  # enqueues that found a message for the job still pending

    def attach(self, handoff: Handoff | None) -> None:
        return None  # a job submitted here runs in whichever worker takes its message

    async def connect(self) -> None:
        async with self._lock:
            if self._connected:
                return
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            try:
                await conn.execute("SELECT pg_advisory_lock(%s)", (INIT_LOCK_KEY,))
                try:
                    await self.saq.connect()
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (INIT_LOCK_KEY,))
            finally:
                await conn.close()
            self._connected = True

    async def enqueue(self, job_id: str, *, delay_s: float = 0.0) -> None:
        await self.connect()
        scheduled = int(time.time() + delay_s + 0.999) if delay_s > 0 else 0
        sent = await self.saq.enqueue(
            STEP_FUNCTION,
            key=job_id,
            job_id=job_id,
            scheduled=scheduled,
            ttl=-1,  # delete when processed: the next enqueue for this job inserts afresh
            timeout=MESSAGE_TIMEOUT_S,
            retries=1,
        )
        if sent is None:
            self.absorbed += 1
        else:
            self.enqueued += 1

    async def ping(self) -> None:
        await self.connect()
        async with self.saq.pool.connection() as conn:
            await conn.execute("SELECT 1")

    async def pending(self) -> int:
        """Messages not yet processed (queued or active)."""
        await self.connect()
        return int(await self.saq.count("incomplete"))

    def consumer(
        self, handler: StepHandler, *, concurrency: int = 8, worker_id: str | None = None
    ) -> SaqConsumer:
        return SaqConsumer(self, handler, concurrency=concurrency, worker_id=worker_id)

    async def aclose(self) -> None:
        async with self._lock:
            if self._connected:
                await self.saq.disconnect()
                self._connected = False


class SaqConsumer:
    """Runs SAQ's worker loop in this process: each message calls ``handler(job_id)``.

    Signals are left to the process (``runner.run_worker``): SAQ's worker would otherwise install
    its own SIGTERM handler and stop behind the dispatcher's back.
    """

    def __init__(
        self,
        queue: SaqQueue,
        handler: StepHandler,
        *,
        concurrency: int,
        worker_id: str | None,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.received = 0

        async def step(ctx: dict[str, Any], *, job_id: str) -> None:
            self.received += 1
            await self.handler(job_id)

        self.worker: Any = _SaqWorker(
            queue.saq,
            functions=[(STEP_FUNCTION, step)],
            concurrency=concurrency,
            id=worker_id,
            shutdown_grace_period_s=None,  # handlers are short; leases are released after
            timers={"sweep": 30, "worker_info": 10, "schedule": 1, "abort": 5},
        )
        self.worker.SIGNALS = []  # the process owns SIGTERM/SIGINT
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.queue.connect()
        self._task = asyncio.create_task(self.worker.start(), name="saq-consumer")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("SAQ consumer stopped: %r (the table scan carries on)", task.exception())
        elif self._task is task:
            log.warning("SAQ consumer stopped unexpectedly (the table scan carries on)")

    async def stop(self) -> None:
        """Stop taking messages; a message being handled gets SAQ's grace period to finish."""
        task, self._task = self._task, None
        if task is None:
            return
        await self.worker.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
