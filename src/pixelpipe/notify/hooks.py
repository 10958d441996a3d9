"""``Services.completion_hooks``: called once a job is terminal; wakes waiters, queues webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import orjson

from pixelpipe.db import Database
from pixelpipe.delivery.delivery import Delivery
from pixelpipe.errors import NotFound
from pixelpipe.events.base import Notifier
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs.model import Job
from pixelpipe.notify.outbox import Outbox
from pixelpipe.notify.public import iso, job_payload
from pixelpipe.services import JobCompletions, Services
from pixelpipe.settings import Settings

log = logging.getLogger("pixelpipe.notify")
# How often a waiter re-reads the job row besides listening for ``done:<id>``:
POLL_S = 1.0  # when nothing in this process announces ends (``pixelpipe api`` + workers)
SAFETY_POLL_S = 5.0  # when announcements are expected (in-process worker or a shared notifier)
FIRST_CHECK_S = 0.25  # shared notifier: subscribing awaits, so an end may slip in before it
RECENT_MAX = 4096  # finished jobs kept in memory for waiters in this process
# stored images handed to their waiters in this process (CompletionHooks.hand_image), at most:
HANDED_MAX = 64
HANDED_MAX_BYTES = 16 * 1024 * 1024


def done_channel(job_id: str) -> str:
    """Notifier channel that hears ``<status>`` once job ``job_id`` is terminal."""
    return f"done:{job_id}"


def base_url(settings: Settings) -> str:
    """Absolute base for links in webhook payloads: ``PIXELPIPE_PUBLIC_URL`` or the bind address."""
    return settings.public_url.rstrip("/") or f"http://{settings.host}:{settings.port}"


class CompletionHooks:
    """Cheap, never-raising reactions to a finished job (see :mod:`pixelpipe.notify`);
    ``Services.completion_hooks``, built before the services with what it needs."""

    def __init__(
        self, settings: Settings, db: Database, notifier: Notifier, delivery: Delivery
    ) -> None:
        self.settings, self.notifier, self.delivery = settings, notifier, delivery
        self.outbox = Outbox(db)
        self.wakeup = asyncio.Event()  # set when a webhook was queued: the deliverer sends now
        self.worker_here = False  # a dispatcher runs in this process (set by start_delivery)
        # terminal jobs announced in this process, so that a waiter needs no database read
        self.recent: OrderedDict[str, Job] = OrderedDict()
        self._watchers: dict[str, list[asyncio.Future[Job]]] = {}
        self._handed: OrderedDict[str, bytes] = OrderedDict()
        self._handed_bytes = 0

    def watch(self, job_id: str) -> asyncio.Future[Job]:
        """A future this process's announcement of ``job_id``'s end resolves (see
        :func:`wait_finished`); give it back with :meth:`unwatch`."""
        fut: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(job_id, []).append(fut)
        return fut

    def unwatch(self, job_id: str, fut: asyncio.Future[Job]) -> None:
        futures = self._watchers.get(job_id)
        if futures is not None and fut in futures:
            futures.remove(fut)
            if not futures:
                del self._watchers[job_id]

    def finished(self, job_id: str) -> Job | None:
        """The terminal job if it was announced here recently (else None: read the row)."""
        return self.recent.get(job_id)

    def hand_image(self, job_id: str, data: bytes) -> None:
        """``data``: the image just stored for ``job_id``, which a waiter here watches, so that
        its answer need not read it back from storage (:meth:`take_image`). Only while watched;
        the oldest go first past :data:`HANDED_MAX` images or :data:`HANDED_MAX_BYTES` (one no
        waiter takes, e.g. of an answer with a URL, costs memory only until then)."""
        if job_id not in self._watchers or len(data) > HANDED_MAX_BYTES:
            return
        self.take_image(job_id)
        self._handed[job_id] = data
        self._handed_bytes += len(data)
        while len(self._handed) > HANDED_MAX or self._handed_bytes > HANDED_MAX_BYTES:
            self._handed_bytes -= len(self._handed.popitem(last=False)[1])

    def take_image(self, job_id: str) -> bytes | None:
        """The image handed over for ``job_id`` (once), or None: read it from storage."""
        data = self._handed.pop(job_id, None)
        if data is not None:
            self._handed_bytes -= len(data)
        return data

    async def job_finished(self, job: Job) -> None:
        self.recent[job.id] = job
        while len(self.recent) > RECENT_MAX:
            self.recent.popitem(last=False)
        for fut in self._watchers.pop(job.id, ()):
            if not fut.done():
                fut.set_result(job)
        try:
            await self.notifier.publish(done_channel(job.id), str(job.status))
        except Exception:
            log.exception("could not publish the end of %s", job.id)
        if job.webhook_url:
            try:
                await self.queue_webhook(job)
            except Exception:  # a webhook must never break the pipeline; the job is done anyway
                log.exception("could not queue the completion webhook of %s", job.id)

    async def queue_webhook(self, job: Job) -> bool:
        """Write the outbox row for ``job`` (idempotent: one webhook per job)."""
        assert job.webhook_url is not None
        event_type = f"generation.{job.status}"
        body = orjson.dumps(
            {
                "type": event_type,
                "timestamp": iso(time.time()) or "",
                "data": await self.render(job),
            }
        ).decode()
        added = await self.outbox.add(job.id, job.webhook_url, event_type, body)
        if added:
            self.wakeup.set()
        return added

    async def render(self, job: Job) -> dict[str, Any]:
        """The public generation (as ``GET /v1/generations/{id}`` shows it), with absolute URLs."""
        return await job_payload(self, job, base_url(self.settings))  # JSON data, no model


async def wait_finished(svc: Services, job_id: str, *, timeout_s: float | None) -> Job:
    """Wait until job ``job_id`` is terminal and return it; TimeoutError after ``timeout_s``.

    Listens on :func:`done_channel` (published by :class:`CompletionHooks`) and also re-reads
    the row now and then (:func:`_poll_plan`), so a lost notification or a job finished by a path
    without hooks costs latency, never correctness. Each re-read is a database query, so they
    are rare where notifications are expected to arrive.
    """
    hooks = svc.completion_hooks
    if hooks.worker_here and isinstance(svc.notifier, LocalNotifier):
        return await _wait_here(svc, hooks, job_id, timeout_s)
    first, every = _poll_plan(svc)
    async with svc.notifier.subscribe(done_channel(job_id)) as messages:
        listener = _next(messages)
        try:
            async with asyncio.timeout(timeout_s):
                delay = first
                while True:
                    done, _ = await asyncio.wait({listener}, timeout=delay)
                    if done:
                        listener = _next(messages) if listener.exception() is None else _never()
                        known = hooks.finished(job_id)
                        if known is not None:
                            return known
                    if (job := await _ended_row(svc, job_id)) is not None:
                        return job
                    delay = every
        finally:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener


async def _wait_here(
    svc: Services, hooks: JobCompletions, job_id: str, timeout_s: float | None
) -> Job:
    """Embedded: the worker runs here and announces every end to ``hooks`` (the in-process
    notifier hears no other process anyway), so wait on a plain future — no subscription, no
    listener task — re-reading the row every few seconds all the same."""
    fut = hooks.watch(job_id)
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                known = hooks.finished(job_id)  # ended before the watch began
                if known is not None:
                    return known
                done, _ = await asyncio.wait({fut}, timeout=SAFETY_POLL_S)
                if done:
                    return fut.result()
                if (job := await _ended_row(svc, job_id)) is not None:
                    return job
    finally:
        hooks.unwatch(job_id, fut)


async def _ended_row(svc: Services, job_id: str) -> Job | None:
    """The job as its row says, when that says it ended (a waiter's safety re-read)."""
    job = await svc.store.get(job_id)
    if job is None:
        raise NotFound(f"no generation with id {job_id!r}")
    return job if job.status.terminal else None


def _poll_plan(svc: Services) -> tuple[float, float]:
    """(first re-read, then every) for :func:`wait_finished` when it subscribes (an in-process
    notifier with the worker here never gets this far: see :func:`_wait_here`)."""
    if not isinstance(svc.notifier, LocalNotifier):  # a shared notifier hears every process
        return FIRST_CHECK_S, SAFETY_POLL_S
    return POLL_S / 2, POLL_S


def _next(messages: AsyncIterator[str]) -> asyncio.Future[Any]:
    # a task, so that a timeout never cancels the iterator itself (an async generator would close)
    step: Awaitable[Any] = anext(messages)
    return asyncio.ensure_future(step)


def _never() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()
