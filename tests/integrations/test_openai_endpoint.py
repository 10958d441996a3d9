"""The official ``openai`` client against ``pixelpipe serve`` (subprocess)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from tests.integrations.conftest import Fakes, start_server
from tests.support.serve import CLI, Server, metric

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


def test_models_list_is_openais_list_object_with_our_catalog_details(priced: Server) -> None:
    page = client(priced).models.list()
    models = {m.id: m for m in page.data}
    assert {"preview", "flux-schnell", "gpt-image-1"} <= set(models)
    preview = models["preview"]
    assert preview.object == "model" and preview.owned_by == "pixelpipe"
    assert preview.created > 0
    extra = preview.model_extra or {}
    assert extra["name"] == "preview" and extra["providers"] == ["preview"]
    assert "1:1" in extra["aspect_ratios"] and "price_usd" in extra
    flux = models["flux-schnell"].model_extra or {}
    assert flux["price_usd"] == {"replicate": "0.003", "fal": "0.003"}
    raw = httpx.get(f"{priced.url}/v1/models", timeout=5).json()
    assert raw["object"] == "list" and isinstance(raw["data"], list)


def test_models_retrieve_by_name_or_provider_id_and_unknown_is_model_not_found(
    priced: Server,
) -> None:
    assert client(priced).models.retrieve("preview").id == "preview"
    by_provider_id = client(priced).models.retrieve("black-forest-labs/flux-schnell")
    assert by_provider_id.id == "flux-schnell"
    with pytest.raises(openai.NotFoundError) as err:
        client(priced).models.retrieve("dall-e-2")
    assert err.value.code == "model_not_found"
    assert "dall-e-2" in err.value.message and "preview" in err.value.message


def noise_png(side: int) -> bytes:
    """An incompressible PNG of ``side``² pixels (≈ 3·side² bytes: a realistic photo upload)."""
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def test_variations_say_they_are_not_supported_even_for_a_large_upload(
    server: Server, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(noise_png(1200))  # ≈ 4.3 MB, far over the 64 KiB JSON body limit
    assert photo.stat().st_size > 4_000_000
    with pytest.raises(openai.BadRequestError) as err, photo.open("rb") as fh:
        client(server).images.create_variation(image=fh)
    assert err.value.code == "unsupported_endpoint"
    message = err.value.message
    assert "variations" in message and "not supported" in message
    assert "/v1/images/generations" in message


def test_upload_over_the_upload_limit_is_413_in_openais_envelope(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", {"PIXELPIPE_MAX_UPLOAD_BYTES": "1000000"})
    try:
        with pytest.raises(openai.APIStatusError) as err:
            client(srv).images.edit(image=("big.png", noise_png(700)), prompt="x")
        assert err.value.status_code == 413
        assert "larger than 1000000 bytes" in err.value.message
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server with API keys on: a read-only key, and a generate key limited to 1 request/min."""
    srv = start_server(tmp_path_factory.mktemp("oai-keyed") / "data", {})
    try:
        keys = {
            name: _create_key(srv, scopes, rpm)
            for name, scopes, rpm in (("read", "read", "0"), ("slow", "generate,read", "1"))
        }
        time.sleep(1.2)  # the server re-checks "no keys yet" once a second
        yield srv, keys
    finally:
        srv.stop()


def _create_key(srv: Server, scopes: str, rpm: str) -> str:
    made = subprocess.run(
        [*CLI, "keys", "create", "--scopes", scopes, "--rpm", rpm, "--json"],
        env=srv.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return str(json.loads(made.stdout)["key"])


def keyed_client(srv: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{srv.url}/v1", api_key=key, max_retries=0)


def test_auth_errors_are_openai_errors_that_carry_our_message(
    keyed: tuple[Server, dict[str, str]],
) -> None:
    srv, keys = keyed
    with pytest.raises(openai.AuthenticationError) as auth:
        keyed_client(srv, "sk-not-a-pixelpipe-key").models.list()
    assert "API key is not valid" in auth.value.message
    assert auth.value.code == "invalid_api_key" and auth.value.type == "invalid_request_error"
    assert auth.value.response.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(openai.AuthenticationError) as auth:
        keyed_client(srv, "sk-x").images.generate(prompt="a cat", size="64x64")
    assert "API key is not valid" in auth.value.message

    with pytest.raises(openai.PermissionDeniedError) as denied:
        keyed_client(srv, keys["read"]).images.generate(prompt="a cat", size="64x64")
    assert "lacks the 'generate' scope" in denied.value.message

    slow = keyed_client(srv, keys["slow"])
    assert slow.models.retrieve("preview").id == "preview"
    with pytest.raises(openai.RateLimitError) as limited:
        slow.models.list()
    assert "1 requests per minute" in limited.value.message
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.code == "rate_limit_exceeded"

    # the native API keeps problem+json
    native = httpx.get(f"{srv.url}/v1/generations", timeout=5)
    assert native.status_code == 401
    assert native.headers["content-type"].startswith("application/problem+json")
    assert native.json()["code"] == "unauthorized"


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
        assert res.size == "1024x1024" and res.output_format == "png"
        assert res.background == "auto"  # not forwarded to the provider: the model chooses
        usage = res.usage
        assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens
        assert usage.input_tokens_details.text_tokens == usage.input_tokens
        # models without token pricing echo the request, no usage, no background
        other = client(srv).images.generate(prompt="a fox", model="flux-schnell")
        assert other.usage is None and other.background is None
        assert other.size == "1024x1024" and other.output_format

        with pytest.raises(openai.BadRequestError) as err:
            client(srv).images.generate(prompt="[blocked] a forbidden thing", model="flux-schnell")
        assert err.value.code == "content_policy_violation"
        assert "provider_rejected" in str(err.value.body)
    finally:
        srv.stop()
