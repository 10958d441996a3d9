"""Edits through the pipeline: inputs resolved to digests, keyed k2, their bytes given to the
provider; the same edit twice is one provider call; what cannot be an input is refused first."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from pixelpipe.catalog import load_catalog
from pixelpipe.errors import InputRejected, InvalidRequest, SafetyRejected
from pixelpipe.inputs import InputLimits, store_input
from pixelpipe.intake import check_inputs, new_request
from pixelpipe.jobs.model import JobStatus
from pixelpipe.jobs.tables import jobs
from pixelpipe.providers.base import ProviderRequest, ProviderUpdate
from pixelpipe.services import Services
from pixelpipe.usecases.batch import submit_many_and_wait
from pixelpipe.usecases.submit import submit
from pixelpipe.usecases.worker_lifecycle import embedded_worker
from tests.inputs.images import jpeg_with_gps, picture


@pytest.fixture
def submitted(svc: Services, monkeypatch: pytest.MonkeyPatch) -> list[ProviderRequest]:
    """Every request the preview provider is asked to run (it still runs them)."""
    seen: list[ProviderRequest] = []
    provider = svc.providers["preview"]
    original = provider.submit

    async def recording(req: ProviderRequest) -> ProviderUpdate:
        seen.append(req)
        return await original(req)

    monkeypatch.setattr(provider, "submit", recording)
    return seen


def edit(prompt: str = "make it blue", **fields: Any) -> Any:
    return new_request(prompt, model="preview", seed=5, size="64x64", **fields)


async def _count_jobs(svc: Services) -> int:
    async with svc.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(jobs))).scalar() or 0)


async def test_an_edit_runs_with_its_input_bytes_and_twice_is_one_provider_call(
    svc: Services, submitted: list[ProviderRequest]
) -> None:
    photo = await store_input(svc.storage, jpeg_with_gps(), InputLimits())
    mask = await store_input(svc.storage, picture("PNG", (40, 30), "white"), InputLimits())
    body = edit(images=[photo.id], mask=mask.id, strength=0.5)
    async with embedded_worker(svc, grace_s=1.0):
        (first,) = await submit_many_and_wait(svc, [body], timeout_s=30)
        (again,) = await submit_many_and_wait(svc, [body], timeout_s=30)
    assert first.status is JobStatus.SUCCEEDED, first.error_detail
    assert first.content_key.startswith("k2:")
    assert first.request.images == (photo.digest,) and first.request.mask == mask.digest
    assert first.request.strength == 0.5
    assert again.cached and again.content_key == first.content_key
    (sent,) = submitted  # one provider call for the two requests
    assert [i.digest for i in sent.images] == [photo.digest]
    assert sent.images[0].data == await svc.storage.get(photo.key)  # the stripped bytes
    assert b"ACME Camera" not in sent.images[0].data
    assert sent.mask is not None and sent.mask.digest == mask.digest
    assert (sent.images[0].width, sent.images[0].height) == (40, 30)


async def test_a_text_request_keeps_its_k1_key_and_no_inputs(
    svc: Services, submitted: list[ProviderRequest]
) -> None:
    async with embedded_worker(svc, grace_s=1.0):
        (job,) = await submit_many_and_wait(svc, [edit()], timeout_s=30)
    assert job.content_key.startswith("k1:") and "images" not in job.request.to_dict()
    assert submitted[0].images == () and submitted[0].mask is None


async def test_an_edit_of_a_gallery_image_by_generation_id(svc: Services) -> None:
    async with embedded_worker(svc, grace_s=1.0):
        (source,) = await submit_many_and_wait(svc, [edit()], timeout_s=30)
        (edited,) = await submit_many_and_wait(svc, [edit(images=[source.id])], timeout_s=30)
    assert edited.status is JobStatus.SUCCEEDED
    assert len(edited.request.images) == 1 and edited.content_key.startswith("k2:")


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"images": ["upl_" + "0" * 64]}, "images[0]", "POST /v1/uploads"),
        ({"images": ["gen_0000000000aaaaaaaaaaaaaaaa"]}, "images[0]", "no such generation"),
        ({"images": ["a cat"]}, "images[0]", "neither an upload id"),
        ({"images": ["https://10.1.2.3/cat.png"]}, "images[0]", "refused"),
        ({"mask": "upl_" + "0" * 64}, "images", "needs at least one input image"),
        ({"strength": 0.5}, "images", "needs at least one input image"),
    ],
)
async def test_inputs_that_cannot_be_used_are_refused_before_a_job_exists(
    svc: Services, fields: dict[str, Any], field: str, says: str
) -> None:
    svc.settings.test_mode = False  # the production fetch guard: https, public addresses
    with pytest.raises(InvalidRequest) as err:
        await submit(svc, edit(**fields))
    assert says in err.value.detail and err.value.extra["field"] == field
    assert await _count_jobs(svc) == 0
    assert not svc.storage._objects  # type: ignore[attr-defined]


async def test_a_hostile_url_input_is_refused_and_nothing_is_stored(svc: Services) -> None:
    svc.settings.test_mode = False
    with pytest.raises(InputRejected, match="refused"):
        await submit(svc, edit(images=["https://169.254.169.254/latest/meta-data/x.png"]))
    assert await _count_jobs(svc) == 0


async def test_a_blocked_prompt_downloads_no_input(svc: Services) -> None:
    with pytest.raises(SafetyRejected):
        await submit(svc, edit(prompt="a beheading scene", images=["https://10.1.2.3/x.png"]))
    assert not svc.storage._objects  # type: ignore[attr-defined]


def test_a_model_without_image_inputs_is_refused_naming_those_that_take_them() -> None:
    catalog = load_catalog()
    body = new_request("x", model="flux-schnell", images=["upl_" + "a" * 64])
    with pytest.raises(InvalidRequest) as err:
        check_inputs(body, catalog)
    assert "flux-schnell takes no input images" in err.value.detail
    assert "preview" in err.value.detail
    with pytest.raises(InvalidRequest, match="at most 16"):
        new_request("x", model="preview", images=["upl_" + "a" * 64] * 17)
