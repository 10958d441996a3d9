"""FLUX.1 Kontext [pro] on Replicate: an edit of one input image, against the Replicate fake."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from pixelpipe.errors import ProviderInvalidInput
from pixelpipe.fakes import replicate_schema
from pixelpipe.pricing.table import load_price_table
from pixelpipe.providers import replicate as replicate_pkg
from pixelpipe.providers.base import InputImage, RunState
from pixelpipe.providers.replicate.client import ReplicateProvider, _made_for, replicate_input
from pixelpipe.providers.replicate.files import INLINE_MAX_BYTES

from .conftest import CATALOG, REPLICATE_TOKEN, Running, canon
from .kontext_inputs import decoded, edit, input_image, match_input
from .test_replicate import finish, image_at

MODEL_ID = "black-forest-labs/flux-kontext-pro"


@pytest.fixture
async def provider(replicate_fake: Running) -> AsyncIterator[ReplicateProvider]:
    p = ReplicateProvider(REPLICATE_TOKEN, base_url=replicate_fake.url)
    yield p
    await p.aclose()


def test_the_catalog_has_kontext_on_replicate_first_then_fal_taking_one_image() -> None:
    spec = CATALOG.get("flux-kontext-pro")
    assert spec.provider_ids == {"replicate": MODEL_ID, "fal": "fal-ai/flux-pro/kontext"}
    assert spec.providers == ("replicate", "fal")
    raw = tomllib.loads(Path(replicate_pkg.__file__).with_name("models.toml").read_text())
    entry = raw["models"]["flux-kontext-pro"]
    assert entry["max_input_images"] == 1 and entry["accepts_mask"] is False


def test_an_edit_sends_the_image_as_a_data_uri_and_matches_its_shape() -> None:
    image = input_image()
    req = edit("replicate", image, format="jpeg")
    data = replicate_input(req.request, MODEL_ID, req.images)
    assert data.pop("input_image").startswith("data:image/png;base64,")
    assert data == {
        "prompt": "a red fox",
        "seed": 42,
        "output_format": "jpg",
        "aspect_ratio": "1:1",  # the request's ratio, when it names one
    }
    bare = canon(model="flux-kontext-pro").__class__(
        **{**req.request.to_dict(), "aspect_ratio": None}
    )
    assert replicate_input(bare, MODEL_ID, req.images)["aspect_ratio"] == "match_input_image"
    assert decoded(replicate_input(bare, MODEL_ID, req.images)["input_image"]) == image.data
    assert replicate_schema.validate(MODEL_ID, data | {"input_image": "https://x/a.png"}) == []


def test_without_an_image_kontext_draws_from_the_prompt_at_its_ratio() -> None:
    data = replicate_input(canon(model="flux-kontext-pro", aspect_ratio="16:9"), MODEL_ID)
    assert "input_image" not in data and data["aspect_ratio"] == "16:9"
    assert replicate_schema.output_size(MODEL_ID, data) == (1392, 752)
    odd = canon(model="flux-kontext-pro").__class__(
        **{**canon(model="flux-kontext-pro").to_dict(), "width": 1000, "height": 1000}
    )
    with pytest.raises(ProviderInvalidInput, match="Kontext"):
        replicate_input(odd, MODEL_ID)


async def test_an_edit_runs_on_the_fake_and_draws_the_inputs_shape(
    provider: ReplicateProvider, replicate_fake: Running
) -> None:
    req = match_input(edit("replicate", input_image((600, 400))))
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.SUCCEEDED, done.error
    (out,) = done.outputs
    assert out.url and out.content_type == "image/png"
    assert (await image_at(out.url)).size == (1248, 832)  # 3:2, nearest the input's 600x400
    assert (await replicate_fake.stats())["creates"] == {MODEL_ID: 1}


async def test_the_fake_refuses_an_input_that_is_not_an_image(
    provider: ReplicateProvider,
) -> None:
    req = edit("replicate", input_image())
    broken = req.images[0].__class__("sha256:x", "image/png", b"not a png", 1, 1)
    req = req.__class__(req.job_id, req.attempt, req.request, req.model_id, images=(broken,))
    with pytest.raises(ProviderInvalidInput, match="input_image"):
        await provider.submit(req)


def test_kontext_costs_four_cents_an_image_on_replicate() -> None:
    price = load_price_table().estimate(canon(model="flux-kontext-pro"), "replicate")
    assert price.amount_micros == 40_000 and price.basis == "per_image"


def test_a_listed_run_matches_an_edit_whatever_became_of_its_data_uri() -> None:
    image = input_image()
    req = edit("replicate", image)
    expected = replicate_input(req.request, MODEL_ID, req.images)
    hook = "https://pp.example/hooks/replicate?job=job_k&attempt=1"
    kept = {"input": dict(expected), "webhook": hook}
    as_url = {"input": expected | {"input_image": "https://replicate.delivery/x/in.png"}}
    dropped = {"input": {k: v for k, v in expected.items() if k != "input_image"}}
    refs = {"input_image"}
    for listed in (kept, as_url, dropped):
        assert _made_for(listed, expected, hook, refs)
    assert not _made_for(as_url, expected, hook)  # the image counts where it is not a ref
    other_prompt = {"input": expected | {"prompt": "another"}}
    assert not _made_for(other_prompt, expected, hook, refs)
    assert not _made_for({"input": dict(expected), "webhook": hook + "2"}, expected, hook, refs)
    assert not _made_for({"input": None}, expected, None, refs)


def noisy_image(size: tuple[int, int] = (400, 600)) -> InputImage:
    """A PNG over 256 KB (noise does not compress): Replicate takes it by file, not inline."""
    data = io.BytesIO()
    Image.frombytes("RGB", size, random.Random(7).randbytes(size[0] * size[1] * 3)).save(
        data, "PNG"
    )
    raw = data.getvalue()
    assert len(raw) > INLINE_MAX_BYTES
    return InputImage("sha256:" + hashlib.sha256(raw).hexdigest(), "image/png", raw, *size)


async def test_a_large_input_goes_by_the_files_api_once_and_the_model_reads_it(
    provider: ReplicateProvider, replicate_fake: Running
) -> None:
    image = noisy_image()
    req = match_input(edit("replicate", image))
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.SUCCEEDED, done.error
    (stored,) = replicate_fake.fake.file_store.files.values()
    assert stored.data == image.data and stored.metadata == {"sha256": image.digest}
    (pred,) = replicate_fake.fake.predictions.values()
    assert pred.input["input_image"] == f"{replicate_fake.url}/v1/files/{stored.id}"
    assert pred.input["aspect_ratio"] == "match_input_image"
    assert (await image_at(done.outputs[0].url or "")).size == (832, 1248)  # read the file: 2:3
    again = await provider.submit(dataclasses.replace(req, job_id="job_k2"))
    assert again.provider_job_id != done.provider_job_id
    assert len(replicate_fake.fake.file_store.files) == 1  # the same image: not uploaded again
    # after a restart (a new provider, nothing remembered) the lost create is still found
    fresh = ReplicateProvider(REPLICATE_TOKEN, base_url=replicate_fake.url)
    try:
        found = await fresh.find_run(req, since=0.0)
    finally:
        await fresh.aclose()
    assert found is not None and found.provider_job_id == done.provider_job_id
    assert len(replicate_fake.fake.file_store.files) == 1  # looking uploads nothing


async def test_a_small_input_stays_inline_and_an_unknown_file_is_a_422(
    provider: ReplicateProvider, replicate_fake: Running
) -> None:
    req = edit("replicate", input_image())
    await provider.submit(req)
    assert not replicate_fake.fake.file_store.files
    (pred,) = replicate_fake.fake.predictions.values()
    assert pred.input["input_image"].startswith("data:image/png;base64,")
    bad = replicate_input(req.request, MODEL_ID, req.images) | {
        "input_image": f"{replicate_fake.url}/v1/files/nosuchfile"
    }
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {REPLICATE_TOKEN}"}) as c:
        resp = await c.post(
            f"{replicate_fake.url}/v1/models/{MODEL_ID}/predictions", json={"input": bad}
        )
    assert resp.status_code == 422 and "does not exist" in resp.json()["detail"]
