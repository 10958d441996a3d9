"""The worker hands a just-stored image to its waiter in this process (``CompletionHooks``), so
the OpenAI endpoint's ``b64_json`` answer does not read it back from storage; bounded, taken once,
and only for a job somebody here waits on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import JobStatus
from pixelpipe.notify.hooks import HANDED_MAX, HANDED_MAX_BYTES, CompletionHooks, wait_finished
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.images import image_bytes
from pixelpipe.usecases.submit import submit
from tests.jobs.conftest import dispatching


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    services = await build_services(settings)
    services.completion_hooks.worker_here = True  # as serve's start_delivery sets it
    async with dispatching(services):
        yield services


def _hooks(svc: Services) -> CompletionHooks:
    assert isinstance(svc.completion_hooks, CompletionHooks)
    return svc.completion_hooks


class _CountingGets:
    def __init__(self, svc: Services) -> None:
        self.keys: list[str] = []
        inner = svc.storage.get

        async def get(key: str) -> bytes:
            self.keys.append(key)
            return await inner(key)

        svc.storage.get = get  # type: ignore[method-assign]


async def test_a_waited_job_answers_with_the_stored_bytes_without_reading_them_back(
    svc: Services,
) -> None:
    gets = _CountingGets(svc)
    sub = await submit(svc, GenerationRequest(prompt="handed over", seed=11, size="64x64"))
    job = await wait_finished(svc, sub.job.id, timeout_s=30)
    assert job.status is JobStatus.SUCCEEDED and job.storage_key
    answered = await image_bytes(svc, job)
    assert gets.keys == []  # handed over: storage was not read
    assert answered == await svc.storage.get(job.storage_key)  # and it is the stored image
    assert await image_bytes(svc, job) == answered  # taken once: the next read is storage's
    assert gets.keys == [job.storage_key] * 2


async def test_nothing_is_handed_over_for_a_job_nobody_here_waits_on(svc: Services) -> None:
    sub = await submit(svc, GenerationRequest(prompt="nobody waits", seed=12, size="64x64"))
    for _ in range(500):
        job = await svc.store.get(sub.job.id)
        if job is not None and job.status.terminal:
            break
        await asyncio.sleep(0.01)
    assert job is not None and job.status is JobStatus.SUCCEEDED
    assert _hooks(svc).take_image(job.id) is None


async def test_handed_images_are_bounded_taken_once_and_only_while_watched(
    svc: Services,
) -> None:
    hooks = _hooks(svc)
    hooks.hand_image("gen_unwatched", b"x")
    assert hooks.take_image("gen_unwatched") is None  # nobody watches it
    watches = [(f"gen_{i}", hooks.watch(f"gen_{i}")) for i in range(HANDED_MAX + 3)]
    for job_id, _ in watches:
        hooks.hand_image(job_id, job_id.encode())
    assert hooks.take_image("gen_0") is None  # the oldest went past HANDED_MAX images
    assert hooks.take_image("gen_3") == b"gen_3"
    assert hooks.take_image("gen_3") is None  # once
    big = HANDED_MAX_BYTES // 2 + 1
    hooks.hand_image("gen_4", b"a" * big)
    hooks.hand_image("gen_5", b"b" * big)  # over the byte bound: every older one goes
    assert hooks.take_image("gen_4") is None and hooks.take_image("gen_6") is None
    assert hooks.take_image("gen_5") == b"b" * big
    hooks.hand_image("gen_7", b"c" * (HANDED_MAX_BYTES + 1))  # larger than the bound: not kept
    assert hooks.take_image("gen_7") is None
    for job_id, fut in watches:
        hooks.unwatch(job_id, fut)
