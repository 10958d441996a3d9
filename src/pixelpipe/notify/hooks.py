"""``Services.completion_hooks``: called once a job is terminal; wakes waiters, queues webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

import orjson

from pixelpipe.errors import NotFound
from pixelpipe.jobs.model import Job
from pixelpipe.notify.outbox import Outbox

if TYPE_CHECKING:
    from pixelpipe.bootstrap import Services

log = logging.getLogger("pixelpipe.notify")
FIRST_CHECK_S = 0.25  # a waiter re-reads the job this soon in case it missed the notification
POLL_S = 1.0  # ... and then this often (other processes' jobs, lost notifications)


def done_channel(job_id: str) -> str:
    """Notifier channel that hears ``<status>`` once job ``job_id`` is terminal."""
    return f"done:{job_id}"


def base_url(svc: Services) -> str:
    """Absolute base for links in webhook payloads: ``PIXELPIPE_PUBLIC_URL`` or the bind address."""
    s = svc.settings
    return s.public_url.rstrip("/") or f"http://{s.host}:{s.port}"


def absolute(url: str | None, base: str) -> str | None:
    if url is None or not url.startswith("/"):
        return url
    return base + url


class CompletionHooks:
    """Cheap, never-raising reactions to a finished job (see :mod:`pixelpipe.notify`)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.outbox = Outbox(svc.db)
        self.wakeup = asyncio.Event()  # set when a webhook was queued: the deliverer sends now

    async def job_finished(self, job: Job) -> None:
        try:
            await self.svc.notifier.publish(done_channel(job.id), str(job.status))
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
                "timestamp": _iso(time.time()),
                "data": await self.render(job),
            }
        ).decode()
        added = await self.outbox.add(job.id, job.webhook_url, event_type, body)
        if added:
            self.wakeup.set()
        return added

    async def render(self, job: Job) -> dict[str, Any]:
        """The public generation (as ``GET /v1/generations/{id}`` shows it), with absolute URLs."""
        from pixelpipe.api.schemas import render_job

        data = (await render_job(self.svc, job)).model_dump(mode="json")
        base = base_url(self.svc)
        image = data.get("image")
        if image:
            image["url"] = absolute(image["url"], base)
            image["thumbnail_url"] = absolute(image.get("thumbnail_url"), base)
        data["links"] = {k: absolute(v, base) for k, v in data.get("links", {}).items()}
        return data


def _iso(ts: float) -> str:
    from pixelpipe.api.schemas import iso

    return iso(ts) or ""


async def wait_finished(svc: Services, job_id: str, *, timeout_s: float | None) -> Job:
    """Wait until job ``job_id`` is terminal and return it; TimeoutError after ``timeout_s``.

    Listens on :func:`done_channel` (published by :class:`CompletionHooks`) and re-reads the row
    after ``FIRST_CHECK_S`` and then every ``POLL_S`` seconds, so a lost notification or a job
    finished by a path without hooks costs latency, never correctness.
    """
    async with svc.notifier.subscribe(done_channel(job_id)) as messages:
        listener = _next(messages)
        try:
            async with asyncio.timeout(timeout_s):
                delay = FIRST_CHECK_S
                while True:
                    done, _ = await asyncio.wait({listener}, timeout=delay)
                    if done:
                        listener = _next(messages) if listener.exception() is None else _never()
                    job = await svc.store.get(job_id)
                    if job is None:
                        raise NotFound(f"no generation with id {job_id!r}")
                    if job.status.terminal:
                        return job
                    delay = POLL_S
        finally:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener


def _next(messages: AsyncIterator[str]) -> asyncio.Future[Any]:
    # a task, so that a timeout never cancels the iterator itself (an async generator would close)
    step: Awaitable[Any] = anext(messages)
    return asyncio.ensure_future(step)


def _never() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


MAX_URL_CHARS = 2000


def check_webhook_url(url: str) -> None:
    """Intake check of a completion-webhook URL (the address itself is checked when sending)."""
    from urllib.parse import urlsplit

    from pixelpipe.errors import InvalidRequest

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if len(url) > MAX_URL_CHARS:
        raise InvalidRequest(
            f"webhook URL has {len(url)} characters; the limit is {MAX_URL_CHARS}", field="webhook"
        )
    if parts is None or parts.scheme not in ("https", "http") or not host:
        raise InvalidRequest(
            "webhook must be an absolute http(s) URL, e.g. https://example.com/hooks/pixelpipe",
            field="webhook",
        )
    if parts.username or parts.password:
        raise InvalidRequest("webhook URL must not contain credentials", field="webhook")
