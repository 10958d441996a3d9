"""The image use cases: a finished job's bytes and URLs, the stored object for the image routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.errors import NotFound
from pixelpipe.intake import new_request
from pixelpipe.jobs.model import JobStatus
from pixelpipe.settings import load_settings
from pixelpipe.usecases.batch import submit_many_and_wait
from pixelpipe.usecases.images import (
    image_bytes,
    image_url,
    local_image_url,
    stored_image,
)
from pixelpipe.usecases.worker_lifecycle import embedded_worker


async def test_a_finished_jobs_image_by_bytes_url_and_stored_object(tmp_path: Path) -> None:
    svc = await build_services(load_settings(data_dir=tmp_path))
    try:
        async with embedded_worker(svc, grace_s=1.0):
            body = new_request("a lighthouse", model="preview", seed=3, size="64x64")
            (job,) = await submit_many_and_wait(svc, [body], timeout_s=30)
        assert job.status is JobStatus.SUCCEEDED and job.storage_key
        data = await image_bytes(svc, job)
        assert data == await svc.storage.get(job.storage_key)
        assert (await image_url(svc, job)).startswith(f"/v1/images/{job.storage_key}?")
        local = await local_image_url(svc, job)
        assert local.startswith("file://") and Path(local[len("file://") :]).read_bytes() == data
        stored = await stored_image(svc, job.storage_key)
        assert stored.path is not None and stored.path.read_bytes() == data
        assert stored.content_type == f"image/{job.storage_key.rsplit('.', 1)[1]}"
        with pytest.raises(NotFound):
            await stored_image(svc, job.storage_key.replace(".", "0."))
        job.storage_key = None  # a job without an image (failed, canceled, still running)
        for get in (image_bytes, image_url, local_image_url):
            with pytest.raises(NotFound, match="has no image"):
                await get(svc, job)
    finally:
        await svc.aclose()


async def test_bytes_come_from_storage_when_it_serves_no_files(tmp_path: Path) -> None:
    svc = await build_services(load_settings(data_dir=tmp_path, storage_url="memory://"))
    try:
        await svc.storage.put("preview/ab/x.webp", b"RIFF....WEBP", content_type="image/webp")
        stored = await stored_image(svc, "preview/ab/x.webp")
        assert stored.path is None and stored.data == b"RIFF....WEBP"
        assert stored.content_type == "image/webp"
    finally:
        await svc.aclose()
