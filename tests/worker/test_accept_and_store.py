"""A run's image is fetched, verified and thumbnailed while its bill commits — the two overlap —
yet nothing is stored before that commit: a job that moved on meanwhile gets no object, and an
output that does not verify fails the job after its run was billed, as in sequence. Where a
stream reader of the process waits, the image is handed to it once billed and checked — its bytes
kept with the bill, its put under way (a URL's bytes: once stored) — before the thumbnail and the
job's last commit."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.errors import ImageInvalid, PixelpipeError, StorageError
from pixelpipe.events.partials import Final
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.providers.base import Output, ProviderUpdate
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.submit import submit
from pixelpipe.worker import output, provider_request
from pixelpipe.worker.context import StepContext


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    services = await build_services(Settings(data_dir=tmp_path))  # type: ignore[call-arg]
    yield services
    await services.aclose()


async def submitted(
    svc: Services, prompt: str, fmt: str = "webp", size: str = "64x64"
) -> tuple[Job, ProviderUpdate]:
    request = GenerationRequest(prompt=prompt, seed=9, size=size, format=fmt)
    job = (await submit(svc, request)).job
    assert await svc.store.claim(job.id, "w", lease_s=60) is not None
    moved = await svc.store.transition(
        job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, owner="w", attempt=1
    )
    assert moved is not None
    return moved, await svc.providers["preview"].submit(provider_request(svc, moved))


def objects(svc: Services) -> list[Path]:
    root = svc.settings.data_dir / "images"
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


async def test_the_image_is_prepared_while_the_bill_commits(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, update = await submitted(svc, "overlap")
    order: list[str] = []
    real_accept, real_ready = output.accept_success, output._ready_output

    async def slow_accept(*args: Any, **kw: Any) -> Job | None:
        order.append("bill starts")
        await asyncio.sleep(0.05)  # a slow commit
        moved = await real_accept(*args, **kw)
        order.append("bill committed")
        return moved

    async def ready(*args: Any, **kw: Any) -> Any:
        prepared = await real_ready(*args, **kw)
        order.append("image prepared")
        return prepared

    monkeypatch.setattr(output, "accept_success", slow_accept)
    monkeypatch.setattr(output, "_ready_output", ready)
    await output.accept_and_store(StepContext(svc, "w"), job, update)
    assert order == ["bill starts", "image prepared", "bill committed"]
    done = await svc.store.get(job.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED
    assert objects(svc)  # stored after the commit


async def test_a_job_that_moved_on_meanwhile_gets_nothing_stored(svc: Services) -> None:
    job, update = await submitted(svc, "moved on")
    canceled = await svc.store.transition(job.id, JobStatus.SUBMITTING, JobStatus.CANCELED)
    assert canceled is not None
    await output.accept_and_store(StepContext(svc, "w"), job, update)
    after = await svc.store.get(job.id)
    assert after is not None and after.status is JobStatus.CANCELED
    assert objects(svc) == []


async def test_an_output_that_does_not_verify_fails_after_the_bill(svc: Services) -> None:
    job, update = await submitted(svc, "garbage")
    bad = dataclasses.replace(update, outputs=(Output(data=b"no image", content_type="image/png"),))
    with pytest.raises(PixelpipeError):
        await output.accept_and_store(StepContext(svc, "w"), job, bad)
    after = await svc.store.get(job.id)
    assert after is not None and after.status is JobStatus.FETCHING  # billed, then failed
    assert objects(svc) == []


async def test_a_waiting_reader_gets_the_image_once_billed_before_the_job_ends(
    svc: Services,
) -> None:
    job, update = await submitted(svc, "handed over", fmt="png", size="512x512")
    async with svc.partials.subscribe(job.id) as reader:
        storing = asyncio.ensure_future(output.accept_and_store(StepContext(svc, "w"), job, update))
        final = await asyncio.wait_for(anext(reader), 10)
        assert isinstance(final, Final)
        billed = await svc.store.get(job.id)
        assert billed is not None and billed.status is JobStatus.FETCHING  # not finished yet
        assert (await svc.ledger.totals()).images == 1  # the attempt is billed
        # the bytes are kept with the bill, in its commit (the put of the image runs behind)
        assert await kept_bytes(svc, billed) == final.data
        assert final.provider_state == billed.provider_state
        await storing
    done = await svc.store.get(job.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED
    assert done.storage_key and await svc.storage.get(done.storage_key) == final.data
    assert done.thumb_key != done.storage_key and len(objects(svc)) == 2  # the thumbnail, after


async def kept_bytes(svc: Services, job: Job) -> bytes:
    """The run's output as its row keeps it: base64, or an object of the job's."""
    kept = job.provider_state["outputs"][0]
    if kept.get("kept"):
        return await svc.storage.get(kept["kept"])
    return base64.b64decode(kept["data_b64"])


async def test_a_put_that_fails_after_the_hand_over_is_made_good_by_the_steps_rerun(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader got the image before its put finished; the put fails (a crash there is the
    same): the step run again stores exactly the bytes the reader got."""
    job, update = await submitted(svc, "put fails", fmt="png", size="512x512")
    real_put = svc.storage.put

    async def failing_put(key: str, data: bytes, *, content_type: str) -> None:
        raise StorageError("the disk is gone for a moment")

    monkeypatch.setattr(svc.storage, "put", failing_put)
    async with svc.partials.subscribe(job.id) as reader:
        with pytest.raises(StorageError):
            await output.accept_and_store(StepContext(svc, "w"), job, update)
        final = await asyncio.wait_for(anext(reader), 10)
    assert isinstance(final, Final) and objects(svc) == []
    monkeypatch.setattr(svc.storage, "put", real_put)
    billed = await svc.store.get(job.id)
    assert billed is not None and billed.status is JobStatus.FETCHING
    await output.fetch_and_store(StepContext(svc, "w"), billed, None)
    done = await svc.store.get(job.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED and done.storage_key
    assert await svc.storage.get(done.storage_key) == final.data


async def test_an_image_fetched_from_a_url_is_stored_before_it_is_handed_over(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes the row does not keep (a URL's) are stored before any reader gets them."""
    job, update = await submitted(svc, "from a url", fmt="png", size="512x512")
    image = update.outputs[0].data
    assert image is not None
    at_url = dataclasses.replace(
        update, outputs=(Output(url="https://cdn.example/out.png", content_type="image/png"),)
    )

    async def fetched(ctx: StepContext, job: Job, outputs: list[Output]) -> bytes:
        assert outputs[0].url
        await asyncio.sleep(0)
        return image

    monkeypatch.setattr(output, "_raw_output", fetched)
    async with svc.partials.subscribe(job.id) as reader:
        storing = asyncio.ensure_future(output.accept_and_store(StepContext(svc, "w"), job, at_url))
        final = await asyncio.wait_for(anext(reader), 10)
        assert isinstance(final, Final) and final.data == image
        assert [p.read_bytes() for p in objects(svc)] == [image]  # stored; no thumbnail yet
        await storing


async def test_without_a_reader_or_a_png_nothing_is_handed_over(svc: Services) -> None:
    webp, webp_update = await submitted(svc, "not a png", fmt="webp", size="512x512")
    png, png_update = await submitted(svc, "nobody reads", fmt="png", size="512x512")
    async with svc.partials.subscribe(webp.id) as reader:
        await output.accept_and_store(StepContext(svc, "w"), webp, webp_update)
        await output.accept_and_store(StepContext(svc, "w"), png, png_update)
        waiting = asyncio.ensure_future(anext(reader))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        waiting.cancel()
    for job in (webp, png):
        done = await svc.store.get(job.id)
        assert done is not None and done.status is JobStatus.SUCCEEDED


async def test_an_image_pillow_refuses_after_the_check_is_withdrawn_and_fails_the_job(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, update = await submitted(svc, "refused late", fmt="png", size="512x512")

    def refused(raw: bytes, fmt: str) -> Any:
        raise ImageInvalid("image is corrupt or truncated (SyntaxError)")

    monkeypatch.setattr(output, "_prepare_image", refused)
    async with svc.partials.subscribe(job.id) as reader:
        with pytest.raises(ImageInvalid):
            await output.accept_and_store(StepContext(svc, "w"), job, update)
        assert isinstance(await asyncio.wait_for(anext(reader), 10), Final)  # handed, refused
    assert objects(svc) == []  # and no object is left under the job's key
    after = await svc.store.get(job.id)
    assert after is not None and after.status is JobStatus.FETCHING  # billed, then failed
