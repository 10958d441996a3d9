"""Worker and webhook-receiver decisions for hosted providers, step by step, with a stub provider.

The end-to-end tests (tests/e2e/test_providers_e2e.py) show the flows through ``pixelpipe serve``;
these pin down the races and edge cases that timing alone cannot reproduce reliably: a webhook
arriving while a worker holds the job, a poll that fails, a provider paused by a 429, an
interrupted submit and an ambiguous one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.errors import (
    ConfigError,
    PixelpipeError,
    ProviderContentRejected,
    ProviderRateLimited,
    ProviderUnavailable,
)
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.providers.base import Output, ProviderRequest, ProviderUpdate, RunState
from pixelpipe.services import Services
from pixelpipe.settings import load_settings
from pixelpipe.usecases.submit import submit
from pixelpipe.webhooks import WebhookDeferred, handle_provider_webhook
from pixelpipe.worker import Worker

Step = ProviderUpdate | PixelpipeError


class StubProvider:
    """Answers submit and poll from scripted lists; parse_webhook returns ``webhook``."""

    supports_webhooks = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.on_submit: list[Step] = []
        self.on_poll: list[Step] = []
        self.webhook: ProviderUpdate | None = None
        self.submits = 0

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        self.submits += 1
        return _next(self.on_submit)

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        return _next(self.on_poll)

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        return None

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        assert self.webhook is not None
        return self.webhook

    async def aclose(self) -> None:
        return None


def _next(steps: list[Step]) -> ProviderUpdate:
    step = steps.pop(0)
    if isinstance(step, PixelpipeError):
        raise step
    return step


def running(pid: str = "run-1", **kw: Any) -> ProviderUpdate:
    return ProviderUpdate(pid, RunState.RUNNING, **kw)


def succeeded(pid: str = "run-1") -> ProviderUpdate:
    out = (Output(url="https://replicate.delivery/x.webp"),)
    return ProviderUpdate(pid, RunState.SUCCEEDED, outputs=out, delivery_id=f"msg-{pid}")


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        data_dir=tmp_path,
        replicate_api_token="r8_test",
        fal_key="id:secret",
        public_url="https://pixelpipe.example",
    )
    services = await build_services(settings)
    for name in ("replicate", "fal"):
        await services.providers[name].aclose()
        services.providers[name] = StubProvider(name)
    try:
        yield services
    finally:
        await services.aclose()


def stub(svc: Services, name: str = "replicate") -> StubProvider:
    provider = svc.providers[name]
    assert isinstance(provider, StubProvider)
    return provider


async def new_job(svc: Services, provider: str = "replicate") -> Job:
    body = GenerationRequest(prompt=f"a fox {time.time_ns()}", model="flux-dev", provider=provider)
    return (await submit(svc, body)).job


async def step(svc: Services, job_id: str, owner: str = "w1") -> Job:
    """Claim the job (whatever its schedule) and run one step; return the row afterwards."""
    claimed = await svc.store.claim(job_id, owner, lease_s=60)
    assert claimed is not None
    await Worker(svc, owner).run_step(claimed)
    job = await svc.store.get(job_id)
    assert job is not None
    return job


async def events(svc: Services, job_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in await svc.store.events_since(job_id) if e.type == kind]


async def test_a_failed_poll_keeps_the_run_and_spends_no_attempt(svc: Services) -> None:
    rep = stub(svc)
    rep.on_submit = [running()]
    rep.on_poll = [ProviderRateLimited("429", retry_after=3.0), running(progress={"percent": 40})]
    job = await new_job(svc)
    job = await step(svc, job.id)
    assert job.status is JobStatus.WAITING and job.attempt == 1

    job = await step(svc, job.id)  # 429 on the status call
    assert job.status is JobStatus.WAITING and job.provider_job_id == "run-1"
    assert job.attempt == 1 and rep.submits == 1
    assert job.next_run_at is not None and job.next_run_at >= time.time() + 2.9
    assert svc.gate.paused_for("replicate") > 2.5
    [retry] = await events(svc, job.id, "retry")
    assert retry["polling"] is True and retry["retry_in_s"] >= 3.0

    job = await step(svc, job.id)  # polling again works; the counter of failed polls resets
    assert job.status is JobStatus.WAITING and "poll_errors" not in job.provider_state
    assert await events(svc, job.id, "progress") == [{"percent": 40}]


async def test_a_paused_provider_moves_the_job_without_spending_an_attempt(svc: Services) -> None:
    svc.gate.pause("replicate", 30.0)
    job = await step(svc, (await new_job(svc)).id)
    assert job.status is JobStatus.QUEUED and job.attempt == 0
    assert job.provider == "fal" and stub(svc).submits == 0
    [retry] = await events(svc, job.id, "retry")
    assert retry["failover"] == {"from": "replicate", "to": "fal"}


async def test_when_every_provider_is_paused_the_job_waits_out_the_pause(svc: Services) -> None:
    svc.gate.pause("replicate", 4.0)
    svc.gate.pause("fal", 8.0)
    job = await step(svc, (await new_job(svc)).id)
    assert job.status is JobStatus.QUEUED and job.attempt == 0 and job.provider == "replicate"
    assert job.next_run_at is not None and job.next_run_at >= time.time() + 3.9


async def test_a_429_on_submit_spends_no_attempt(svc: Services) -> None:
    rep = stub(svc)
    job = await new_job(svc)
    await svc.store.update(job.id, max_attempts=1)
    for _ in range(3):  # more refusals than max_attempts: a storm is waited out
        rep.on_submit = [ProviderRateLimited("429", retry_after=0.01)]
        svc.gate.pause("fal", 60.0)  # keep it on replicate
        job = await step(svc, job.id)
        assert job.status is JobStatus.QUEUED and job.attempt == 0
        await asyncio.sleep(0.02)
    assert job.provider_state["rate_limited"] == 3
    rep.on_submit = [running()]
    job = await step(svc, job.id)
    assert job.status is JobStatus.WAITING and job.attempt == 1


async def test_an_outage_mark_does_not_block_a_submit(svc: Services) -> None:
    svc.gate.mark_outage("replicate", 30.0)
    svc.gate.mark_outage("fal", 30.0)
    stub(svc).on_submit = [running()]
    job = await step(svc, (await new_job(svc)).id)
    assert job.status is JobStatus.WAITING and stub(svc).submits == 1


async def test_an_ambiguous_submit_is_retried_on_the_same_provider(svc: Services) -> None:
    lost = ProviderUnavailable("replicate unreachable: ReadTimeout", provider="replicate")
    lost.extra["ambiguous"] = True
    stub(svc).on_submit = [lost]
    job = await step(svc, (await new_job(svc)).id)
    assert job.status is JobStatus.QUEUED and job.provider == "replicate" and job.attempt == 1
    [retry] = await events(svc, job.id, "retry")
    assert retry["ambiguous"] is True and "failover" not in retry


async def test_a_content_policy_refusal_fails_at_once(svc: Services) -> None:
    refused = ProviderContentRejected("replicate: flagged as sensitive", provider="replicate")
    stub(svc).on_submit = [running()]
    stub(svc).on_poll = [ProviderUpdate("run-1", RunState.FAILED, error=refused, billable=False)]
    job = await new_job(svc)
    await step(svc, job.id)
    job = await step(svc, job.id)
    assert job.status is JobStatus.FAILED and job.error_code == "provider_rejected"
    assert job.attempt == 1 and await events(svc, job.id, "retry") == []


async def test_an_interrupted_submit_goes_round_again(svc: Services) -> None:
    job = await new_job(svc)
    claimed = await svc.store.claim(job.id, "crashed", lease_s=60)
    assert claimed is not None
    await svc.store.transition(job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, attempt=1)
    await svc.store.release(job.id, "crashed")
    job = await step(svc, job.id)
    assert job.status is JobStatus.QUEUED and job.error_code is None
    stub(svc).on_submit = [running()]
    job = await step(svc, job.id)
    assert job.status is JobStatus.WAITING and job.attempt == 2


async def test_a_webhook_waits_for_the_worker_that_holds_the_job(svc: Services) -> None:
    rep = stub(svc)
    rep.on_submit = [running()]
    job = await new_job(svc)
    await step(svc, job.id)
    held = await svc.store.claim(job.id, "poller", lease_s=60)
    assert held is not None
    rep.webhook = succeeded()

    async def poller_finishes() -> None:
        await asyncio.sleep(0.3)  # the poll saw "running" and schedules the next one far out
        await svc.store.update(job.id, next_run_at=time.time() + 300)
        await svc.store.release(job.id, "poller")

    outcome, _ = await asyncio.gather(
        handle_provider_webhook(svc, "replicate", {}, b"{}"), poller_finishes()
    )
    assert outcome == "applied"
    after = await svc.store.get(job.id)
    assert after is not None and after.status is JobStatus.FETCHING
    assert after.next_run_at is not None and after.next_run_at <= time.time()
    assert await handle_provider_webhook(svc, "replicate", {}, b"{}") == "duplicate"


async def test_a_webhook_answers_503_when_the_job_stays_busy(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pixelpipe.webhooks.CLAIM_WAIT_S", 0.2)
    stub(svc).on_submit = [running()]
    job = await new_job(svc)
    await step(svc, job.id)
    assert await svc.store.claim(job.id, "slow", lease_s=60) is not None
    stub(svc).webhook = succeeded()
    with pytest.raises(WebhookDeferred):
        await handle_provider_webhook(svc, "replicate", {}, b"{}")
    await svc.store.release(job.id, "slow")
    # the delivery was not consumed: the provider's redelivery applies
    assert await handle_provider_webhook(svc, "replicate", {}, b"{}") == "applied"


async def test_a_webhook_for_a_job_that_moved_on_is_ignored(svc: Services) -> None:
    rep = stub(svc)
    rep.on_submit = [running()]
    job = await new_job(svc)
    await step(svc, job.id)
    # a poll saw the end first: the job is fetching
    claimed = await svc.store.claim(job.id, "w1", lease_s=60)
    assert claimed is not None
    await Worker(svc, "w1").accept_success(claimed, succeeded())
    await svc.store.release(job.id, "w1")
    rep.webhook = ProviderUpdate("run-1", RunState.SUCCEEDED, delivery_id="other-delivery")
    assert await handle_provider_webhook(svc, "replicate", {}, b"{}") == "ignored"
    after = await svc.store.get(job.id)
    assert after is not None and after.status is JobStatus.FETCHING
    # a stale run of an earlier attempt is unknown to the job
    rep.webhook = ProviderUpdate("run-0", RunState.FAILED, delivery_id="old")
    assert await handle_provider_webhook(svc, "replicate", {}, b"{}") == "unknown_run"


def test_the_configured_provider_order_comes_first(svc: Services) -> None:
    spec = svc.catalog.get("flux-dev")
    assert svc.gate.choose(spec, preferred=None) == "replicate"  # catalog order: cheapest first
    svc.gate.order = ("fal",)
    assert svc.gate.choose(spec, preferred=None) == "fal"
    assert svc.gate.choose(spec, preferred=None, exclude="fal") == "replicate"
    svc.gate.pause("fal", 30.0)
    assert svc.gate.choose(spec, preferred=None) == "replicate"


async def test_an_unknown_name_in_the_provider_order_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, provider_order="fal, replicat")
    with pytest.raises(ConfigError, match=r"PIXELPIPE_PROVIDER_ORDER.*replicat"):
        await build_services(settings)
