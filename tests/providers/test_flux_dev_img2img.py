"""FLUX.1 [dev] image-to-image with ``strength`` on Replicate (``image`` + ``prompt_strength`` on
the model's predictions) and on fal (the ``/image-to-image`` endpoint: ``image_url`` +
``strength``), against the fakes, which follow each API's schema and errors."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from pixelpipe.errors import InvalidRequest, ProviderInvalidInput
from pixelpipe.fakes import fal_schema, replicate_schema
from pixelpipe.intake import canonicalize, new_request
from pixelpipe.pricing.table import load_price_table
from pixelpipe.providers.base import InputImage, ProviderRequest, RunState
from pixelpipe.providers.fal.client import FalProvider, fal_input, submit_path
from pixelpipe.providers.replicate.client import ReplicateProvider, replicate_input

from .conftest import CATALOG, REPLICATE_TOKEN, Running
from .kontext_inputs import decoded, edit, input_image
from .test_fal import finish as fal_finish
from .test_fal import make as make_fal
from .test_replicate import finish as replicate_finish

AT = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
REPLICATE_ID = "black-forest-labs/flux-dev"
FAL_ID = "fal-ai/flux/dev"


@pytest.fixture
async def replicate(replicate_fake: Running) -> AsyncIterator[ReplicateProvider]:
    p = ReplicateProvider(REPLICATE_TOKEN, base_url=replicate_fake.url)
    yield p
    await p.aclose()


@pytest.fixture
async def fal(fal_fake: Running) -> AsyncIterator[FalProvider]:
    p = make_fal(fal_fake, jwks_refetch_interval_s=0.0)
    yield p
    await p.aclose()


def img2img(
    provider: str, strength: float | None = 0.6, size: tuple[int, int] = (600, 400)
) -> tuple[ProviderRequest, InputImage]:
    image = input_image(size)
    req = edit(provider, image, model="flux-dev", format="png")
    with_inputs = dataclasses.replace(req.request, images=(image.digest,), strength=strength)
    return dataclasses.replace(req, request=with_inputs), image


def test_the_catalog_gives_flux_dev_one_image_and_a_strength_range() -> None:
    spec = CATALOG.get("flux-dev")
    assert spec.max_input_images == 1 and not spec.accepts_mask
    assert spec.strength is not None and (spec.strength.min, spec.strength.max) == (0.01, 1.0)
    body = new_request("x", model="flux-dev", images=["upl_" + "a" * 64], strength=0.001)
    with pytest.raises(InvalidRequest, match="strength"):
        canonicalize(body, CATALOG, inputs={"upl_" + "a" * 64: "sha256:" + "a" * 64})


def test_replicate_sends_the_image_and_prompt_strength_to_flux_dev() -> None:
    req, image = img2img("replicate")
    data = replicate_input(req.request, REPLICATE_ID, req.images)
    assert decoded(data["image"]) == image.data and data["prompt_strength"] == 0.6
    assert replicate_schema.validate(REPLICATE_ID, data) == []
    assert replicate_schema.output_size(REPLICATE_ID, data) == (1216, 832)  # 3:2, the input's
    broken = data | {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}
    (err,) = replicate_schema.validate(REPLICATE_ID, broken)
    assert err["field"] == "input.image"
    with pytest.raises(ProviderInvalidInput, match="takes no input image"):
        replicate_input(req.request, "black-forest-labs/flux-schnell", req.images)


def test_fal_sends_image_url_and_strength_to_the_image_to_image_endpoint() -> None:
    req, image = img2img("fal")
    assert submit_path(FAL_ID, req.images) == f"{FAL_ID}/image-to-image"
    assert submit_path(FAL_ID, ()) == FAL_ID
    data = fal_input(req.request, FAL_ID, req.images)
    assert decoded(data.pop("image_url")) == image.data
    assert data == {
        "prompt": "a red fox",
        "num_images": 1,
        "seed": 42,
        "output_format": "png",
        "enable_safety_checker": True,
        "strength": 0.6,
        "num_inference_steps": 28,
        "guidance_scale": 3.0,
    }
    endpoint = f"{FAL_ID}/image-to-image"
    assert fal_schema.validate(endpoint, data | {"image_url": image.data_uri()}) == []
    assert fal_schema.validate(endpoint, data)[0]["loc"] == ["body", "image_url"]
    with pytest.raises(ProviderInvalidInput, match="takes no input image"):
        submit_path("fal-ai/flux/schnell", req.images)


async def test_replicate_runs_it_at_the_inputs_aspect_ratio(
    replicate: ReplicateProvider, replicate_fake: Running
) -> None:
    req, _ = img2img("replicate", size=(400, 600))
    done = await replicate_finish(replicate, await replicate.submit(req), req)
    assert done.state is RunState.SUCCEEDED, done.error
    assert (await replicate_fake.stats())["creates"] == {REPLICATE_ID: 1}
    price = load_price_table().actual(req.request, "replicate", done.usage, at=AT)
    assert price.amount_micros == 25_000  # per image, as text to image


async def test_fal_runs_it_at_the_inputs_size_priced_at_the_image_to_image_rate(
    fal: FalProvider, fal_fake: Running
) -> None:
    req, _ = img2img("fal", size=(600, 400))
    done = await fal_finish(fal, await fal.submit(req), req)
    assert done.state is RunState.SUCCEEDED, done.error
    assert (done.usage["width"], done.usage["height"]) == (592, 400)  # multiples of 16
    assert (await fal_fake.stats())["creates"] == {f"{FAL_ID}/image-to-image": 1}
    table = load_price_table()
    assert table.actual(req.request, "fal", done.usage, at=AT).amount_micros == 30_000  # 1 MP
    text = dataclasses.replace(req.request, images=(), strength=None)
    assert table.estimate(text, "fal", at=AT).amount_micros == 25_000  # 1024x1024: 1 MP at .025
    assert table.estimate(req.request, "fal", at=AT).amount_micros == 30_000  # at .03
