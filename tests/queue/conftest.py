"""One harness per queue: the embedded LocalQueue and SAQ on a real PostgreSQL.

A harness is a producer (what an API process holds) and a worker side (what ``pixelpipe worker``
runs: the table-claiming Dispatcher, plus the SAQ consumer feeding ``Dispatcher.offer``). For SAQ
they are two separate ``Services`` with their own pools — two processes in all but PID.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.dispatcher import Dispatcher
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import Job
from pixelpipe.providers.preview.client import PreviewProvider
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.submit import submit

QUEUES = ["local", pytest.param("saq", marks=pytest.mark.servers)]


@dataclass
class QueueHarness:
    kind: str
    producer: Services
    worker: Services
    dispatcher: Dispatcher
    consumer: Any = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def provider(self) -> PreviewProvider:
        provider = self.worker.providers["preview"]
        assert isinstance(provider, PreviewProvider)
        return provider

    async def submit(self, prompt: str) -> Job:
        body = GenerationRequest(prompt=prompt, model="preview", seed=1, size="64x64")
        return (await submit(self.producer, body)).job

    async def wait_done(self, job_id: str, timeout: float = 10.0) -> Job:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = await self.producer.store.get(job_id)
            if job is not None and job.status.terminal:
                return job
            await asyncio.sleep(0.05)
        raise AssertionError(f"{job_id} not finished within {timeout}s: {job}")

    async def wait_all(self, job_ids: list[str], timeout: float = 30.0) -> list[Job]:
        """One waiter at a time (many concurrent pollers would load the database themselves)."""
        deadline = time.monotonic() + timeout
        return [await self.wait_done(j, max(0.1, deadline - time.monotonic())) for j in job_ids]

    def start_table_scan(self) -> None:
        self.tasks.append(asyncio.create_task(self.dispatcher.run()))


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path, storage_url="memory://", **extra
    )


@pytest.fixture(params=QUEUES)
async def queue_harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[QueueHarness]:
    # The table scan's idle poll is slowed to 30 s, so a test that passes quickly proves the
    # queue's own delivery path (LocalQueue: the wake-up event; SAQ: LISTEN/NOTIFY + offer).
    monkeypatch.setattr("pixelpipe.dispatcher.IDLE_MAX_S", 30.0)
    if request.param == "local":
        svc = await build_services(_settings(tmp_path))
        harness = QueueHarness("local", svc, svc, Dispatcher(svc, svc.queue.wakeup))
        harness.start_table_scan()
    else:
        url = request.getfixturevalue("postgres_url")
        settings = _settings(tmp_path, database_url=url, queue_url=url)
        producer = await build_services(settings)
        worker = await build_services(settings, migrate=False)
        dispatcher = Dispatcher(worker, worker.queue.wakeup, owner="worker-1")
        harness = QueueHarness("saq", producer, worker, dispatcher)
        harness.consumer = worker.queue.consumer(dispatcher.offer, concurrency=4, worker_id=None)
        assert harness.consumer is not None
        await harness.consumer.start()
        harness.start_table_scan()
    try:
        yield harness
    finally:
        if harness.consumer is not None:
            await harness.consumer.stop()
        await harness.dispatcher.stop(grace_s=5)
        for t in harness.tasks:
            t.cancel()
        await asyncio.gather(*harness.tasks, return_exceptions=True)
        await harness.worker.aclose()
        if harness.producer is not harness.worker:
            await harness.producer.aclose()
