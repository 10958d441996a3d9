"""FLUX.1 Kontext [pro] on fal: an edit of one input image (``image_url``), text to image on the
model's ``/text-to-image`` endpoint, against the fal fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from pixelpipe.errors import ProviderInvalidInput
from pixelpipe.fakes import fal_schema
from pixelpipe.pricing.table import load_price_table
from pixelpipe.providers.base import RunState
from pixelpipe.providers.fal.client import FalProvider, fal_input
from pixelpipe.providers.fal.kontext import kontext_path

from .conftest import Running, canon
from .kontext_inputs import decoded, edit, input_image, match_input
from .test_fal import finish, make

MODEL_ID = "fal-ai/flux-pro/kontext"


@pytest.fixture
async def provider(fal_fake: Running) -> AsyncIterator[FalProvider]:
    p = make(fal_fake, jwks_refetch_interval_s=0.0)
    yield p
    await p.aclose()


def test_an_edit_sends_image_url_as_a_data_uri_to_the_model_endpoint() -> None:
    image = input_image(fmt="JPEG")
    req = edit("fal", image, format="jpeg")
    data = fal_input(req.request, MODEL_ID, req.images)
    assert decoded(data.pop("image_url")) == image.data
    assert data == {
        "prompt": "a red fox",
        "num_images": 1,
        "seed": 42,
        "output_format": "jpeg",
        "safety_tolerance": "2",
        "aspect_ratio": "1:1",
    }
    assert kontext_path(MODEL_ID, req.images) == MODEL_ID
    assert fal_schema.validate(MODEL_ID, data | {"image_url": "https://x/a.png"}) == []
    assert fal_schema.validate(MODEL_ID, data)[0]["loc"] == ["body", "image_url"]  # required


def test_without_an_image_it_goes_to_text_to_image() -> None:
    req = canon(model="flux-kontext-pro", aspect_ratio="9:16")
    data = fal_input(req, MODEL_ID)
    endpoint = kontext_path(MODEL_ID, ())
    assert endpoint == f"{MODEL_ID}/text-to-image" and "image_url" not in data
    assert fal_schema.validate(endpoint, data) == []
    assert fal_schema.output_size(endpoint, data) == (752, 1392)


async def test_an_edit_runs_on_the_fake_and_keeps_the_inputs_shape(
    provider: FalProvider, fal_fake: Running
) -> None:
    req = match_input(edit("fal", input_image((400, 600))))
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.SUCCEEDED, done.error
    (out,) = done.outputs
    assert out.url and out.content_type == "image/png"
    assert (done.usage["width"], done.usage["height"]) == (832, 1248)  # 2:3, the input's shape
    async with httpx.AsyncClient() as c:
        assert (await c.get(out.url)).status_code == 200
    assert (await fal_fake.stats())["creates"] == {MODEL_ID: 1}


async def test_text_to_image_runs_on_its_endpoint(provider: FalProvider, fal_fake: Running) -> None:
    req = edit("fal", aspect_ratio="16:9")
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.SUCCEEDED, done.error
    assert (done.usage["width"], done.usage["height"]) == (1392, 752)
    assert (await fal_fake.stats())["creates"] == {f"{MODEL_ID}/text-to-image": 1}


async def test_an_input_that_is_not_an_image_fails_as_invalid_input(provider: FalProvider) -> None:
    req = edit("fal", input_image())
    broken = req.images[0].__class__("sha256:x", "image/png", b"not a png", 1, 1)
    req = req.__class__(req.job_id, req.attempt, req.request, req.model_id, images=(broken,))
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.FAILED and isinstance(done.error, ProviderInvalidInput)
    assert "image_url" in str(done.error)


def test_kontext_costs_four_cents_an_image_on_fal() -> None:
    price = load_price_table().estimate(canon(model="flux-kontext-pro"), "fal")
    assert price.amount_micros == 40_000 and price.basis == "per_image"
