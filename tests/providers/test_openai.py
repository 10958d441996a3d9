"""OpenAI Images client against the OpenAI fake, over real sockets."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from pixelpipe.errors import (
    ProviderAuthError,
    ProviderContentRejected,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderRateLimited,
    ProviderUnavailable,
    Unauthorized,
)
from pixelpipe.providers.base import ProviderRequest, RunState
from pixelpipe.providers.openai.client import OpenAIProvider, openai_body

from .conftest import OPENAI_KEY, Running, canon, preq


@pytest.fixture
async def provider(openai_fake: Running) -> AsyncIterator[OpenAIProvider]:
    p = OpenAIProvider(OPENAI_KEY, base_url=openai_fake.url)
    yield p
    await p.aclose()


def test_gpt_image_body_has_size_quality_format_and_no_response_format() -> None:
    body = openai_body(
        canon(model="gpt-image-1", aspect_ratio="3:2", quality="high"), "gpt-image-1"
    )
    assert body == {
        "model": "gpt-image-1",
        "prompt": "a red fox",
        "n": 1,
        "size": "1536x1024",
        "output_format": "png",
        "quality": "high",
    }


def test_dalle3_body_asks_b64_json() -> None:
    body = openai_body(canon(model="dall-e-3", size="1792x1024", quality="hd"), "dall-e-3")
    assert body == {
        "model": "dall-e-3",
        "prompt": "a red fox",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "response_format": "b64_json",
    }


async def test_gpt_image_is_synchronous_with_bytes_and_usage(
    provider: OpenAIProvider, openai_fake: Running
) -> None:
    upd = await provider.submit(preq("openai", model="gpt-image-1", format="jpeg", quality="low"))
    assert upd.state is RunState.SUCCEEDED and upd.provider_job_id.startswith("req_")
    out = upd.outputs[0]
    assert out.data and out.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(out.data)).size == (1024, 1024)
    assert upd.usage["output_tokens"] == 272 and upd.usage["images"] == 1
    assert (await openai_fake.stats())["creates"] == {"gpt-image-1": 1}


async def test_dalle3_keeps_the_revised_prompt(provider: OpenAIProvider) -> None:
    upd = await provider.submit(preq("openai", model="dall-e-3"))
    assert upd.state is RunState.SUCCEEDED and upd.outputs[0].data
    assert upd.revised_prompt and "a red fox" in upd.revised_prompt


@pytest.mark.parametrize("model", ["gpt-image-1", "dall-e-3"])
async def test_moderation_maps_to_content_rejected(provider: OpenAIProvider, model: str) -> None:
    with pytest.raises(ProviderContentRejected):
        await provider.submit(preq("openai", model=model, prompt="x [blocked]"))


async def test_429_reads_retry_after_ms(openai_fake: Running, provider: OpenAIProvider) -> None:
    await openai_fake.control(rate_limit_next=1, retry_after="2")
    with pytest.raises(ProviderRateLimited) as exc:
        await provider.submit(preq("openai", model="gpt-image-1"))
    assert exc.value.retry_after == 2.0


async def test_5xx_maps_to_unavailable(openai_fake: Running, provider: OpenAIProvider) -> None:
    await openai_fake.control(error_next=1, error_status=500)
    with pytest.raises(ProviderUnavailable):
        await provider.submit(preq("openai", model="gpt-image-1"))


async def test_bad_key_names_openai_api_key(openai_fake: Running) -> None:
    p = OpenAIProvider("sk-wrong-key-987654321", base_url=openai_fake.url)
    try:
        with pytest.raises(ProviderAuthError) as exc:
            await p.submit(preq("openai", model="gpt-image-1"))
    finally:
        await p.aclose()
    assert "OPENAI_API_KEY" in str(exc.value) and "sk-wrong-key-987654321" not in str(exc.value)


async def test_refused_parameter_maps_to_invalid_input(provider: OpenAIProvider) -> None:
    req = preq("openai", model="dall-e-3")
    bad = req.request.__class__(**{**req.request.to_dict(), "width": 512, "height": 512})
    with pytest.raises(ProviderInvalidInput, match="size"):
        await provider.submit(ProviderRequest("j", 1, bad, "dall-e-3"))


async def test_nothing_to_poll_cancel_or_hear(provider: OpenAIProvider) -> None:
    req = preq("openai", model="gpt-image-1")
    assert provider.supports_webhooks is False
    with pytest.raises(ProviderJobLost):
        await provider.poll("req_1", req)
    assert await provider.cancel("req_1", req) is None
    with pytest.raises(Unauthorized):
        await provider.parse_webhook({}, b"{}")


async def test_official_sdk_accepts_the_fake(openai_fake: Running) -> None:
    """The fake speaks the real protocol: the official client parses its answers and errors."""
    openai = pytest.importorskip("openai")
    client = openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=openai_fake.url, max_retries=0)
    try:
        resp = await client.images.generate(model="dall-e-3", prompt="a fox", response_format="url")
        assert resp.data and resp.data[0].url and resp.data[0].revised_prompt
        with pytest.raises(openai.BadRequestError) as exc:
            await client.images.generate(model="gpt-image-1", prompt="x [nsfw]")
        assert exc.value.code == "moderation_blocked"
    finally:
        await client.close()
