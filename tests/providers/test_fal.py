"""fal client against the fal fake, over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pixelpipe.errors import (
    OutputModerated,
    ProviderAuthError,
    ProviderContentRejected,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderRateLimited,
    ProviderUnavailable,
    Unauthorized,
)
from pixelpipe.providers.base import ProviderRequest, ProviderUpdate, RunState
from pixelpipe.providers.fal.client import FalProvider, app_path, fal_input, image_size
from pixelpipe.providers.signing import fal_sign

from .conftest import FAL_KEY, Receiver, Running, canon, preq


def make(fake: Running, key: str = FAL_KEY, **kw: object) -> FalProvider:
    return FalProvider(
        key,
        queue_url=fake.url,
        jwks_url=f"{fake.url}/.well-known/jwks.json",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def provider(fal_fake: Running) -> AsyncIterator[FalProvider]:
    p = make(fal_fake, jwks_refetch_interval_s=0.0)
    yield p
    await p.aclose()


async def finish(p: FalProvider, upd: ProviderUpdate, req: ProviderRequest) -> ProviderUpdate:
    deadline = time.monotonic() + 5
    while not upd.state.terminal and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        upd = await p.poll(upd.provider_job_id, req)
    return upd


# --- parameter translation ---------------------------------------------------------------------


def test_image_size_uses_presets_only_for_exact_matches() -> None:
    assert image_size(1024, 1024) == "square_hd"
    assert image_size(1024, 576) == "landscape_16_9"
    assert image_size(1344, 768) == {"width": 1344, "height": 768}


def test_flux_dev_input() -> None:
    data = fal_input(canon(model="flux-dev", format="webp"), "fal-ai/flux/dev")
    assert data == {
        "prompt": "a red fox",
        "image_size": "square_hd",
        "num_images": 1,
        "seed": 42,
        "output_format": "png",  # fal has no webp: png, transcoded later
        "enable_safety_checker": True,
        "num_inference_steps": 28,
        "guidance_scale": 3.0,
    }


def test_flux_pro_input_has_no_steps_or_guidance() -> None:
    data = fal_input(
        canon(model="flux-1.1-pro", format="jpeg", aspect_ratio="16:9"), "fal-ai/flux-pro/v1.1"
    )
    assert data["output_format"] == "jpeg" and data["safety_tolerance"] == "2"
    assert "num_inference_steps" not in data and "guidance_scale" not in data
    assert data["image_size"] == {"width": 1344, "height": 768}


def test_status_urls_drop_the_model_subpath() -> None:
    assert app_path("fal-ai/flux/schnell") == "fal-ai/flux"
    assert app_path("fal-ai/flux-pro/v1.1") == "fal-ai/flux-pro"
    assert app_path("workflows/me/my-flow/x") == "workflows/me/my-flow"


# --- submit and poll -------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["flux-schnell", "flux-dev", "flux-1.1-pro"])
async def test_submit_then_poll_returns_images(
    provider: FalProvider, fal_fake: Running, model: str
) -> None:
    req = preq("fal", model=model)
    first = await provider.submit(req)
    assert first.state is RunState.PENDING and first.progress == {"queue_position": 0}
    done = await finish(provider, first, req)
    assert done.state is RunState.SUCCEEDED, done.error
    out = done.outputs[0]
    assert out.url and out.content_type == "image/png"
    assert done.usage["images"] == 1 and (done.usage["width"], done.usage["height"]) == (1024, 1024)
    async with httpx.AsyncClient() as c:
        assert (await c.get(out.url)).headers["content-type"] == "image/png"
    assert (await fal_fake.stats())["creates_total"] == 1


async def test_in_progress_logs_reach_progress(provider: FalProvider, fal_fake: Running) -> None:
    await fal_fake.control(latency_s=4.0)
    req = preq("fal", model="flux-dev")
    upd = await provider.submit(req)
    await asyncio.sleep(1.5)
    mid = await provider.poll(upd.provider_job_id, req)
    assert mid.state is RunState.RUNNING and mid.progress["logs"][0].startswith("Generating")
    # how far it is, from the last telling log line (the fake app's tqdm bar, 4 steps)
    assert 0 <= mid.progress["percent"] < 100 and mid.progress["steps"] == 4, mid.progress


async def test_cancel_then_poll_is_canceled(provider: FalProvider, fal_fake: Running) -> None:
    await fal_fake.control(latency_s=5.0)
    req = preq("fal", model="flux-dev")
    upd = await provider.submit(req)
    await provider.cancel(upd.provider_job_id, req)
    assert (await provider.poll(upd.provider_job_id, req)).state is RunState.CANCELED
    await provider.cancel(upd.provider_job_id, req)  # ALREADY_COMPLETED is not an error


async def test_unknown_request_is_job_lost(provider: FalProvider) -> None:
    with pytest.raises(ProviderJobLost):
        await provider.poll("0c6d1a5e-0000-0000-0000-000000000000", preq("fal", model="flux-dev"))


# --- errors ----------------------------------------------------------------------------------


async def test_429_maps_to_rate_limited(fal_fake: Running, provider: FalProvider) -> None:
    await fal_fake.control(rate_limit_next=1, retry_after="3")
    with pytest.raises(ProviderRateLimited) as exc:
        await provider.submit(preq("fal", model="flux-dev"))
    assert exc.value.retry_after == 3.0


async def test_5xx_maps_to_unavailable(fal_fake: Running, provider: FalProvider) -> None:
    await fal_fake.control(error_next=1)
    with pytest.raises(ProviderUnavailable, match="Runner scheduling failure"):
        await provider.submit(preq("fal", model="flux-dev"))


async def test_bad_key_names_fal_key(fal_fake: Running) -> None:
    p = make(fal_fake, key="other-id:other-secret-xyz")
    try:
        with pytest.raises(ProviderAuthError) as exc:
            await p.submit(preq("fal", model="flux-dev"))
    finally:
        await p.aclose()
    assert "FAL_KEY" in str(exc.value) and "other-secret-xyz" not in str(exc.value)


async def test_model_validation_error_comes_back_as_failed_invalid_input(
    provider: FalProvider,
) -> None:
    req = preq("fal", model="flux-dev")
    bad = req.request.__class__(**{**req.request.to_dict(), "guidance": 0.5})
    req = ProviderRequest("j", 1, bad, req.model_id)
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.FAILED and isinstance(done.error, ProviderInvalidInput)
    assert "guidance_scale" in str(done.error)


async def test_content_policy_failure_maps_to_content_rejected(provider: FalProvider) -> None:
    req = preq("fal", model="flux-dev", prompt="a fox [blocked]")
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.FAILED and isinstance(done.error, ProviderContentRejected)


async def test_nsfw_flags_map_to_a_paid_output_block(provider: FalProvider) -> None:
    req = preq("fal", model="flux-dev", prompt="a fox [nsfw]")
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.FAILED and isinstance(done.error, OutputModerated)
    assert done.error.code == "output_blocked" and done.billable  # fal ran it: paid
    assert "has_nsfw_concepts" in done.error.detail


# --- webhooks --------------------------------------------------------------------------------


async def test_webhook_success(provider: FalProvider, receiver: Receiver) -> None:
    upd = await provider.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
    headers, body = await receiver.next()
    parsed = await provider.parse_webhook(headers, body)
    assert parsed.provider_job_id == upd.provider_job_id and parsed.state is RunState.SUCCEEDED
    assert (
        parsed.outputs and parsed.delivery_id and parsed.delivery_id.startswith(upd.provider_job_id)
    )


async def test_webhook_error_payload_is_failed(provider: FalProvider, receiver: Receiver) -> None:
    await provider.submit(
        preq("fal", webhook_url=receiver.url, model="flux-dev", prompt="x [blocked]")
    )
    parsed = await provider.parse_webhook(*(await receiver.next()))
    assert parsed.state is RunState.FAILED and isinstance(parsed.error, ProviderContentRejected)


async def test_forged_tampered_wrong_key_and_replayed_webhooks_are_unauthorized(
    provider: FalProvider, receiver: Receiver
) -> None:
    await provider.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
    headers, body = await receiver.next()
    rid, uid, ts = (headers[f"x-fal-webhook-{k}"] for k in ("request-id", "user-id", "timestamp"))
    wrong = fal_sign(Ed25519PrivateKey.generate(), rid, uid, int(ts), body)
    old_ts = int(time.time()) - 400
    cases = [
        ({**headers, "x-fal-webhook-signature": "00" * 64}, body),
        (headers, body.replace(b'"OK"', b'"ERROR"')),
        ({**headers, "x-fal-webhook-signature": wrong}, body),
        ({**headers, "x-fal-webhook-timestamp": str(old_ts)}, body),
        ({k: v for k, v in headers.items() if k != "x-fal-webhook-user-id"}, body),
    ]
    for h, b in cases:
        with pytest.raises(Unauthorized):
            await provider.parse_webhook(h, b)


async def test_webhook_signed_outside_window_is_unauthorized(
    fal_fake: Running, provider: FalProvider, receiver: Receiver
) -> None:
    await fal_fake.control(webhook_timestamp_skew_s=-301)
    await provider.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
    with pytest.raises(Unauthorized, match="tolerance"):
        await provider.parse_webhook(*(await receiver.next()))


async def test_unknown_key_triggers_one_jwks_refetch(
    fal_fake: Running, provider: FalProvider, receiver: Receiver
) -> None:
    await provider.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
    assert (await provider.parse_webhook(*(await receiver.next()))).state is RunState.SUCCEEDED
    await fal_fake.control(rotate_key=True)
    await provider.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
    assert (await provider.parse_webhook(*(await receiver.next()))).state is RunState.SUCCEEDED
    await fal_fake.control(sign_with_unknown_key=True)
    await provider.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
    with pytest.raises(Unauthorized):
        await provider.parse_webhook(*(await receiver.next()))


async def test_jwks_refetch_is_rate_limited(fal_fake: Running, receiver: Receiver) -> None:
    p = make(fal_fake)  # default: refetch at most once a minute
    try:
        await p.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
        await p.parse_webhook(*(await receiver.next()))
        await fal_fake.control(rotate_key=True)
        await p.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
        with pytest.raises(Unauthorized):
            await p.parse_webhook(*(await receiver.next()))
    finally:
        await p.aclose()


async def test_webhook_body_for_another_request_is_unauthorized(
    provider: FalProvider, receiver: Receiver
) -> None:
    await provider.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
    headers, body = await receiver.next()
    data = json.loads(body)
    assert data["request_id"] == headers["x-fal-webhook-request-id"]
    key = Ed25519PrivateKey.generate()
    swapped = json.dumps({**data, "request_id": "other"}).encode()
    sig = fal_sign(key, headers["x-fal-webhook-request-id"], "u", int(time.time()), swapped)
    with pytest.raises(Unauthorized):
        await provider.parse_webhook({**headers, "x-fal-webhook-signature": sig}, swapped)


async def test_terminal_webhook_is_retried(provider: FalProvider, receiver: Receiver) -> None:
    receiver.fail_first = 1
    await provider.submit(preq("fal", webhook_url=receiver.url, model="flux-schnell"))
    assert (await provider.parse_webhook(*(await receiver.next()))).state is RunState.SUCCEEDED
    assert receiver.attempts == 2
