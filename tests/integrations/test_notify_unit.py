"""Completion webhooks in-process: outbox, retry schedule, give-up rules, signing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from pixelpipe.bootstrap import build_services
from pixelpipe.errors import ConfigError, InvalidRequest
from pixelpipe.intake import GenerationRequest
from pixelpipe.notify.deliver import WebhookDeliverer, parse_schedule
from pixelpipe.notify.outbox import DELIVERED, FAILED, PENDING
from pixelpipe.notify.signing import headers, webhook_secret
from pixelpipe.security.webhook_destinations import check_webhook_url
from pixelpipe.services import Services
from pixelpipe.settings import load_settings
from pixelpipe.usecases.submit import submit
from tests.integrations.conftest import WEBHOOK_SECRET


async def _services(tmp_path: Path, **overrides: object) -> AsyncIterator[Services]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        webhook_secret=WEBHOOK_SECRET,
        webhook_retry_schedule_s="10,20",
        **overrides,
    )
    services = await build_services(settings)
    try:
        yield services
    finally:
        await services.aclose()


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    async for services in _services(tmp_path):
        yield services


@pytest.fixture
async def private_svc(tmp_path: Path) -> AsyncIterator[Services]:
    """PIXELPIPE_WEBHOOK_ALLOW_PRIVATE=true: a loopback webhook is accepted when submitted."""
    async for services in _services(tmp_path, webhook_allow_private=True):
        yield services


def deliverer(svc: Services, answer: httpx.Response | Exception) -> tuple[WebhookDeliverer, list]:  # type: ignore[type-arg]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert svc.completion_hooks is not None
    d = WebhookDeliverer(svc, svc.completion_hooks)
    d.check_addresses = False
    d.http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return d, seen


async def finished_job(svc: Services, url: str = "https://hooks.example.com/x") -> str:
    """A cache hit with a webhook: a finished job, queued in the outbox at once."""
    body = GenerationRequest(prompt="a fox", seed=1, size="64x64", webhook=None)
    first = (await submit(svc, body)).job
    from pixelpipe.worker import Worker

    claimed = await svc.store.claim(first.id, "t", lease_s=30)
    assert claimed is not None
    await Worker(svc, "t").run_step(claimed)
    job = (await submit(svc, body.model_copy(update={"webhook": url}))).job
    assert job.cached
    return job.id


async def test_delivered_once_signed_with_a_stable_id(svc: Services) -> None:
    job_id = await finished_job(svc)
    d, seen = deliverer(svc, httpx.Response(204))
    assert await d.deliver_due() == 1
    row = await d.outbox.for_job(job_id)
    assert row is not None and row.status == DELIVERED and row.attempts == 1
    req = seen[0]
    assert req.headers["webhook-id"] == f"msg_{job_id}"
    payload = Webhook(WEBHOOK_SECRET).verify(req.content, dict(req.headers))
    assert payload["data"]["id"] == job_id
    assert await d.deliver_due() == 0  # nothing left
    # queuing the same job again is a no-op (one webhook per job)
    job = await svc.store.get(job_id)
    assert job is not None and not await svc.completion_hooks.queue_webhook(job)  # type: ignore[union-attr]


async def test_failure_is_retried_later_then_given_up(svc: Services) -> None:
    job_id = await finished_job(svc)
    d, _ = deliverer(svc, httpx.Response(503))
    await d.deliver_due()
    row = await d.outbox.for_job(job_id)
    assert row is not None and row.status == PENDING and row.last_status == 503
    assert row.next_attempt_at is not None and 8 < row.next_attempt_at - time.time() < 12
    assert await d.deliver_due() == 0  # not due yet
    for _ in range(2):  # the schedule has two delays: attempts 2 and 3, then give up
        await d.outbox.retry_at(row.id, 0.0, 503, "x")
        await d.deliver_due()
    row = await d.outbox.for_job(job_id)
    assert row is not None and row.status == FAILED and row.attempts == 3


async def test_retry_after_wins_and_gone_stops(svc: Services) -> None:
    job_id = await finished_job(svc)
    d, _ = deliverer(svc, httpx.Response(429, headers={"retry-after": "120"}))
    await d.deliver_due()
    row = await d.outbox.for_job(job_id)
    assert row is not None and row.next_attempt_at is not None
    assert row.next_attempt_at - time.time() > 100
    await d.outbox.retry_at(row.id, 0.0, 429, "x")
    d2, _ = deliverer(svc, httpx.Response(410))
    await d2.deliver_due()
    row = await d.outbox.for_job(job_id)
    assert row is not None and row.status == FAILED and row.last_status == 410


async def test_connection_errors_retry_and_private_destinations_are_refused(
    private_svc: Services,
) -> None:
    svc = private_svc  # queued while private hosts were allowed, refused once they are not
    job_id = await finished_job(svc, "http://127.0.0.1:9/hook")
    d, seen = deliverer(svc, httpx.ConnectError("refused"))
    await d.deliver_due()
    row = await d.outbox.for_job(job_id)
    assert row is not None and row.status == PENDING and "ConnectError" in (row.last_error or "")
    await d.outbox.retry_at(row.id, 0.0, None, "x")
    d.check_addresses = True  # as without PIXELPIPE_WEBHOOK_ALLOW_PRIVATE
    await d.deliver_due()
    row = await d.outbox.for_job(job_id)
    assert row is not None and row.status == FAILED and "refused" in (row.last_error or "")
    assert len(seen) == 1  # the refused attempt sent nothing


def test_signature_matches_the_reference_library() -> None:
    body = b'{"type":"generation.succeeded"}'
    h = headers(WEBHOOK_SECRET, "msg_1", int(time.time()), body)
    assert Webhook(WEBHOOK_SECRET).verify(body, h) == {"type": "generation.succeeded"}


def test_secret_is_generated_once_and_validated(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    first = webhook_secret(s)
    assert first.startswith("whsec_") and webhook_secret(s) == first
    assert (tmp_path / "webhook.secret").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError):
        webhook_secret(load_settings(data_dir=tmp_path, webhook_secret="whsec_c2hvcnQ="))


def test_schedule_and_url_checks() -> None:
    assert parse_schedule("5, 300,1800") == (5.0, 300.0, 1800.0)
    with pytest.raises(ConfigError):
        parse_schedule("5,soon")
    check_webhook_url("https://example.com/hook?x=1")
    for bad in ("ftp://example.com/x", "/relative", "https://user:pw@example.com/", "x" * 3000):
        with pytest.raises(InvalidRequest):
            check_webhook_url(bad)


async def test_in_process_waiters_wake_on_the_announcement_and_leave_nothing_behind(
    svc: Services,
) -> None:
    import asyncio
    from dataclasses import replace

    from pixelpipe.jobs.model import JobStatus
    from pixelpipe.notify.hooks import wait_finished

    hooks = svc.completion_hooks
    assert hooks is not None
    hooks.worker_here = True  # as when a dispatcher runs in this process
    sub = await submit(svc, GenerationRequest(prompt="waited for", size="64x64", seed=9))
    waiter = asyncio.create_task(wait_finished(svc, sub.job.id, timeout_s=5))
    await asyncio.sleep(0.01)
    assert not waiter.done() and sub.job.id in hooks._watchers
    done = replace(sub.job, status=JobStatus.SUCCEEDED)
    await hooks.job_finished(done)  # no database change: the announcement alone wakes it
    assert await asyncio.wait_for(waiter, 1) is done
    assert hooks._watchers == {}
    # announced before anyone waits: answered from memory at once
    assert await wait_finished(svc, sub.job.id, timeout_s=1) is done
    other = await submit(svc, GenerationRequest(prompt="never ends", size="64x64", seed=9))
    with pytest.raises(TimeoutError):
        await wait_finished(svc, other.job.id, timeout_s=0.05)
    assert hooks._watchers == {}
