"""The one leased-step runner (``Worker.leased_step``) as the dispatcher and the provider
webhook use it: what a crash, a database error and a cancellation leave behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from pixelpipe.bootstrap import build_services
from pixelpipe.errors import ProviderUnavailable
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.providers.base import ProviderRequest, ProviderUpdate, RunState
from pixelpipe.services import Services
from pixelpipe.settings import load_settings
from pixelpipe.webhooks import handle_provider_webhook
from pixelpipe.worker import Worker
from tests.providers.test_worker_flows import (
    StubProvider,
    events,
    new_job,
    running,
    step,
    stub,
    succeeded,
)


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        data_dir=tmp_path,
        replicate_api_token="r8_test",
        fal_key="id:secret",
        public_url="https://pixelpipe.example",
    )
    svc = await build_services(settings)
    for name in ("replicate", "fal"):
        await svc.providers[name].aclose()
        svc.providers[name] = StubProvider(name)
    try:
        yield svc
    finally:
        await svc.aclose()


async def row(svc: Services, job_id: str) -> Job:
    job = await svc.store.get(job_id)
    assert job is not None
    return job


def submit_raising(provider: StubProvider, exc: BaseException) -> None:
    async def submit(req: ProviderRequest) -> ProviderUpdate:
        provider.submits += 1
        raise exc

    provider.submit = submit  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("crash", "code"),
    [
        (KeyError("bug"), "internal_error"),
        (
            OperationalError("UPDATE jobs", {}, Exception("database is locked")),
            "database_unavailable",
        ),
    ],
)
async def test_a_crashed_step_is_retried_later_and_gives_the_lease_back(
    services: Services, crash: Exception, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    submit_raising(stub(services), crash)
    job = await new_job(services)
    after = await step(services, job.id)
    # the submit was sent and no run id came back: the attempt is over (unconfirmed), the job
    # goes round again on the same provider
    assert after.status is JobStatus.QUEUED and after.error_code == code
    assert after.lease_owner is None and after.provider == "replicate"
    [retry] = await events(services, job.id, "retry")
    assert retry["error"]["code"] == code and retry["attempt"] == 1
    assert f"job {job.id}" in caplog.text  # logged: a trace for a bug, a warning for the database


async def test_a_cancelled_step_only_gives_the_lease_back(services: Services) -> None:
    started = asyncio.Event()

    async def hang(req: ProviderRequest) -> ProviderUpdate:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    stub(services).submit = hang  # type: ignore[method-assign]
    job = await new_job(services)
    claimed = await services.store.claim(job.id, "w1", lease_s=60)
    assert claimed is not None
    task = asyncio.create_task(Worker(services, "w1").run_step(claimed))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await row(services, job.id)
    assert after.status is JobStatus.SUBMITTING and after.lease_owner is None
    assert await events(services, job.id, "retry") == []


async def test_a_crash_in_a_webhook_makes_the_provider_deliver_again(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    rep = stub(services)
    rep.on_submit = [running()]
    job = await new_job(services)
    await step(services, job.id)
    rep.webhook = succeeded()

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("store bug")

    with monkeypatch.context() as patch:
        patch.setattr(services.store, "transition", broken)
        with pytest.raises(RuntimeError, match="store bug"):
            await handle_provider_webhook(services, "replicate", {}, b"{}")
    after = await row(services, job.id)
    assert after.status is JobStatus.WAITING and after.lease_owner is None
    assert await events(services, job.id, "retry") == []  # not a step failure: no retry
    # the delivery was forgotten: the provider's redelivery applies
    assert await handle_provider_webhook(services, "replicate", {}, b"{}") == "applied"
    assert (await row(services, job.id)).status is JobStatus.FETCHING


async def test_a_provider_error_in_a_webhook_goes_to_the_retry_policy(
    services: Services,
) -> None:
    rep = stub(services)
    rep.on_submit = [running()]
    job = await new_job(services)
    await step(services, job.id)
    rep.webhook = ProviderUpdate("run-1", RunState.FAILED, error=ProviderUnavailable("503"))
    assert await handle_provider_webhook(services, "replicate", {}, b"{}") == "applied"
    after = await row(services, job.id)
    assert after.status is JobStatus.QUEUED and after.lease_owner is None
    [retry] = await events(services, job.id, "retry")
    assert retry["failover"] == {"from": "replicate", "to": "fal"}
