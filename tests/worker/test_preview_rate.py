"""A job's live previews are at most two a second, whatever brings them (a provider's webhooks
or polls): a preview sooner than 0.5 s after the last one shown is left out of the progress
event, which still carries the rest (percent, step)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import JobStatus
from pixelpipe.providers.base import ProviderUpdate, RunState
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.submit import submit
from pixelpipe.worker import poll
from pixelpipe.worker.context import StepContext

PREVIEW = "data:image/webp;base64,UklGRg=="


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    services = await build_services(Settings(data_dir=tmp_path))  # type: ignore[call-arg]
    yield services
    await services.aclose()


async def test_previews_sooner_than_half_a_second_are_left_out(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = (await submit(svc, GenerationRequest(prompt="previews", seed=2, size="64x64"))).job
    assert await svc.store.claim(job.id, "w", lease_s=60) is not None
    moved = await svc.store.transition(
        job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, owner="w", attempt=1
    )
    assert moved is not None
    clock = [1000.0]
    monkeypatch.setattr(poll.time, "time", lambda: clock[0])
    ctx = StepContext(svc, "w")
    current = moved
    for step, dt in enumerate((0.0, 0.1, 0.2, 0.3, 0.5)):  # at 1000.0, .1, .3, .6, 1.1
        clock[0] += dt
        progress = {"percent": 10.0 * (step + 1), "step": step + 1, "preview": f"{PREVIEW}#{step}"}
        await poll.apply(ctx, current, ProviderUpdate("run-1", RunState.RUNNING, progress=progress))
        again = await svc.store.get(job.id)
        assert again is not None
        current = again
    events = [ev.data for ev in await svc.store.events_since(job.id) if ev.type == "progress"]
    assert [e["step"] for e in events] == [1, 2, 3, 4, 5]  # every progress is shown
    shown = [e["step"] for e in events if "preview" in e]
    assert shown == [1, 4, 5]  # 1000.0, then 1000.6 (>= 0.5 s later), then 1001.1
