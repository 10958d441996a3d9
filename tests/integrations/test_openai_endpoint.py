"""The official ``openai`` client against ``pixelpipe serve`` (subprocess)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from tests.integrations.conftest import Fakes, start_server
from tests.support.serve import Server, metric

pytestmark = pytest.mark.slow
SUBMISSIONS = "pixelpipe_provider_submissions_total"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("oai") / "data", {})
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory, fakes: Fakes) -> Iterator[Server]:
    """A server on the fake providers with a $0.001 daily budget (flux-schnell costs $0.003)."""
    env = {**fakes.env, "PIXELPIPE_BUDGET_DAILY_USD": "0.001"}
    srv = start_server(tmp_path_factory.mktemp("oai-priced") / "data", env)
    try:
        yield srv
    finally:
        srv.stop()


def client(srv: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-unused", max_retries=0)


def test_url_response_is_our_durable_absolute_url(server: Server) -> None:
    res = client(server).images.generate(
        prompt="a lighthouse at dusk", size="64x64", extra_body={"seed": 11}
    )
    assert len(res.data) == 1 and res.data[0].b64_json is None
    url = res.data[0].url
    assert url is not None and url.startswith(f"{server.url}/v1/images/")
    assert res.size == "64x64" and res.created > 0
    img = httpx.get(url, timeout=10)
    assert img.status_code == 200
    assert Image.open(io.BytesIO(img.content)).size == (64, 64)

    # the same request again is a cache hit: same URL, no new provider call
    calls = metric(server.url, SUBMISSIONS, 'provider="preview"')
    raw = client(server).images.with_raw_response.generate(
        prompt="a lighthouse at dusk", size="64x64", extra_body={"seed": 11}
    )
    again = raw.parse()
    assert again.data[0].url == url
    assert raw.headers["x-pixelpipe-cached"] == "true"
    assert raw.headers["x-pixelpipe-cost-usd"] == "0.00"
    assert metric(server.url, SUBMISSIONS, 'provider="preview"') == calls


def test_b64_response_decodes_to_the_image(server: Server) -> None:
    res = client(server).images.generate(
        prompt="a red fox in the snow",
        size="96x64",
        response_format="b64_json",
        output_format="png",
        extra_body={"seed": 3},
    )
    data = res.data[0]
    assert data.url is None and data.b64_json
    img = Image.open(io.BytesIO(base64.b64decode(data.b64_json)))
    assert img.format == "PNG" and img.size == (96, 64)
    assert res.output_format == "png"


def test_n_fans_out_into_jobs_with_consecutive_seeds(server: Server) -> None:
    raw = client(server).images.with_raw_response.generate(
        prompt="three owls", size="64x64", n=3, extra_body={"seed": 41}
    )
    res = raw.parse()
    assert len(res.data) == 3
    assert len({d.url for d in res.data}) == 3
    ids = raw.headers["x-pixelpipe-generation-ids"].split(",")
    seeds = [
        httpx.get(f"{server.url}/v1/generations/{i}", timeout=5).json()["request"]["seed"]
        for i in ids
    ]
    assert seeds == [41, 42, 43]


def test_content_policy_is_a_content_policy_violation(server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client(server).images.generate(prompt="a beheading scene", size="64x64")
    assert err.value.status_code == 400
    assert err.value.code == "content_policy_violation"
    assert err.value.type == "invalid_request_error"


def test_bad_size_is_an_invalid_request(server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client(server).images.generate(prompt="a cat", size="3x3")  # type: ignore[arg-type]
    assert err.value.type == "invalid_request_error"
    assert err.value.param == "size"
    assert "size" in str(err.value.message)
    with pytest.raises(openai.BadRequestError) as err:
        client(server).images.generate(prompt="a cat", n=11)
    assert err.value.param == "n"


def test_unknown_model_is_model_not_found(server: Server) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client(server).images.generate(prompt="a cat", model="dall-e-2")
    assert err.value.code == "model_not_found"


def test_our_models_listing_still_answers(server: Server) -> None:
    models = httpx.get(f"{server.url}/v1/models", timeout=5).json()
    assert any(m["name"] == "preview" for m in models)


def test_budget_is_insufficient_quota(priced: Server) -> None:
    with pytest.raises(openai.RateLimitError) as err:
        client(priced).images.generate(
            prompt="a costly fox", model="flux-schnell", size="1024x1024"
        )
    assert err.value.status_code == 429
    assert err.value.code == "insufficient_quota"
    assert err.value.response.headers["x-should-retry"] == "false"
    # a free model still fits
    ok = client(priced).images.generate(prompt="a free fox", size="64x64")
    assert ok.data[0].url


def test_gpt_image_defaults_to_b64_and_provider_policy_maps(tmp_path: Path, fakes: Fakes) -> None:
    srv = start_server(tmp_path / "data", fakes.env)
    try:
        res = client(srv).images.generate(
            prompt="a poster that says hello", model="gpt-image-1", quality="low"
        )
        assert res.data[0].b64_json and res.data[0].url is None  # as OpenAI does for GPT image
        assert Image.open(io.BytesIO(base64.b64decode(res.data[0].b64_json))).size == (1024, 1024)
        assert res.quality == "low"

        with pytest.raises(openai.BadRequestError) as err:
            client(srv).images.generate(prompt="[blocked] a forbidden thing", model="flux-schnell")
        assert err.value.code == "content_policy_violation"
        assert "provider_rejected" in str(err.value.body)
    finally:
        srv.stop()
