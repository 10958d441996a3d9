"""Small outputs: processed on the event loop, and a small, light image is its own thumbnail."""

from __future__ import annotations

from pathlib import Path

from pixelpipe.intake import GenerationRequest
from pixelpipe.notify.hooks import wait_finished
from pixelpipe.usecases.submit import submit
from tests.security.conftest import running_app


async def _generate(app, size: str, fmt: str = "webp"):  # type: ignore[no-untyped-def]
    body = GenerationRequest.model_validate(
        {"prompt": f"small {size}", "size": size, "format": fmt}
    )
    sub = await submit(app.svc, body)
    return await wait_finished(app.svc, sub.job.id, timeout_s=10)


def _objects(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


async def test_a_small_image_is_stored_once_and_serves_as_its_thumbnail(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app:
        for fmt in ("webp", "png", "jpeg"):
            job = await _generate(app, "64x64", fmt)
            assert job.status.value == "succeeded"
            assert job.thumb_key == job.storage_key
            image = await app.svc.store.find_image(job.content_key)
            assert image is not None and image.thumb_key == job.storage_key
        assert not any(key.startswith("thumbs/") for key in _objects(tmp_path / "images"))


async def test_a_larger_image_gets_a_separate_thumbnail(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app:
        for fmt in ("webp", "png"):
            job = await _generate(app, "512x512", fmt)
            assert job.status.value == "succeeded"
            assert job.thumb_key is not None and job.thumb_key.startswith("thumbs/")
            assert {job.storage_key, job.thumb_key} <= _objects(tmp_path / "images")
