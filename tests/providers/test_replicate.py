"""Replicate client against the Replicate fake, over real sockets."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator

import httpx
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
from pixelpipe.fakes.replicate_schema import version_id
from pixelpipe.providers.base import ProviderRequest, ProviderUpdate, RunState
from pixelpipe.providers.replicate.client import ReplicateProvider, flux_geometry, replicate_input
from pixelpipe.providers.signing import standard_signature

from .conftest import REPLICATE_TOKEN, Receiver, Running, canon, preq


@pytest.fixture
async def provider(replicate_fake: Running) -> AsyncIterator[ReplicateProvider]:
    p = ReplicateProvider(REPLICATE_TOKEN, base_url=replicate_fake.url)
    yield p
    await p.aclose()


async def finish(p: ReplicateProvider, upd: ProviderUpdate, req: ProviderRequest) -> ProviderUpdate:
    deadline = time.monotonic() + 5
    while not upd.state.terminal and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        upd = await p.poll(upd.provider_job_id, req)
    return upd


async def image_at(url: str) -> Image.Image:
    async with httpx.AsyncClient() as c:
        resp = await c.get(url)
    resp.raise_for_status()
    return Image.open(io.BytesIO(resp.content))


# --- parameter translation ---------------------------------------------------------------------


def test_flux_dev_input_has_guidance_steps_and_one_megapixel() -> None:
    data = replicate_input(
        canon(model="flux-dev", aspect_ratio="16:9", format="jpeg"), "x/flux-dev"
    )
    assert data == {
        "prompt": "a red fox",
        "seed": 42,
        "output_format": "jpg",
        "output_quality": 90,
        "aspect_ratio": "16:9",
        "megapixels": "1",
        "num_outputs": 1,
        "num_inference_steps": 28,
        "guidance": 3.0,
    }


def test_flux_schnell_input_has_no_guidance_and_png_has_no_quality() -> None:
    data = replicate_input(canon(model="flux-schnell", format="png"), "b/flux-schnell")
    assert "guidance" not in data and "output_quality" not in data
    assert data["num_inference_steps"] == 4 and data["output_format"] == "png"


def test_flux_pro_uses_ratio_or_custom_size() -> None:
    pro = "black-forest-labs/flux-1.1-pro"
    assert (
        replicate_input(canon(model="flux-1.1-pro", size="1344x768"), pro)["aspect_ratio"] == "16:9"
    )
    req = canon(model="flux-1.1-pro", size="1344x768")
    custom = replicate_input(
        req.__class__(**{**req.to_dict(), "aspect_ratio": None, "width": 1000}), pro
    )
    assert custom["aspect_ratio"] == "custom" and (custom["width"], custom["height"]) == (992, 768)
    assert "num_outputs" not in custom and "megapixels" not in custom


def test_quarter_megapixel_sizes_map_to_megapixels_025() -> None:
    assert flux_geometry(512, 512, None) == ("1:1", "0.25")
    with pytest.raises(ProviderInvalidInput):
        flux_geometry(1000, 1000, None)


# --- submit and poll -------------------------------------------------------------------------


async def test_submit_then_poll_returns_list_output(
    provider: ReplicateProvider, replicate_fake: Running
) -> None:
    req = preq("replicate", model="flux-dev", aspect_ratio="3:2")
    first = await provider.submit(req)
    assert first.state in (RunState.PENDING, RunState.RUNNING)
    done = await finish(provider, first, req)
    assert done.state is RunState.SUCCEEDED
    assert (
        len(done.outputs) == 1
        and done.outputs[0].url
        and done.outputs[0].content_type == "image/webp"
    )
    assert done.usage["image_count"] == 1
    img = await image_at(done.outputs[0].url)
    assert img.size == (1216, 832) and img.format == "WEBP"
    assert (await replicate_fake.stats())["creates"] == {"black-forest-labs/flux-dev": 1}


async def test_create_answers_at_once_so_the_id_is_saved_before_the_run_ends(
    provider: ReplicateProvider, replicate_fake: Running
) -> None:
    # no `Prefer: wait`: a create held for the whole run would lose a billed run's id on a crash
    await replicate_fake.control(latency_s=3.0)
    started = time.monotonic()
    first = await provider.submit(preq("replicate", model="flux-schnell"))
    assert time.monotonic() - started < 1.5
    assert first.state in (RunState.PENDING, RunState.RUNNING) and first.provider_job_id


async def test_sync_mode_is_opt_in(replicate_fake: Running) -> None:
    fast = frozenset({"black-forest-labs/flux-schnell"})
    p = ReplicateProvider(REPLICATE_TOKEN, base_url=replicate_fake.url, wait_models=fast)
    try:
        done = await p.submit(preq("replicate", model="flux-schnell"))
        assert done.state is RunState.SUCCEEDED and done.outputs[0].url
    finally:
        await p.aclose()


async def test_pro_returns_a_single_url_string(provider: ReplicateProvider) -> None:
    req = preq("replicate", model="flux-1.1-pro", format="png")
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.SUCCEEDED and len(done.outputs) == 1
    assert (await image_at(str(done.outputs[0].url))).format == "PNG"


async def test_version_ref_goes_through_predictions_endpoint(provider: ReplicateProvider) -> None:
    req = preq("replicate", model="flux-dev")
    model_id = f"black-forest-labs/flux-dev:{version_id('black-forest-labs/flux-dev')}"
    req = ProviderRequest(req.job_id, 1, req.request, model_id)
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.SUCCEEDED


async def test_progress_percent_is_parsed_from_logs(
    replicate_fake: Running, provider: ReplicateProvider
) -> None:
    await replicate_fake.control(latency_s=4.0)
    req = preq("replicate", model="flux-dev")
    upd = await provider.submit(req)
    await asyncio.sleep(1.5)
    mid = await provider.poll(upd.provider_job_id, req)
    assert mid.state is RunState.RUNNING and 0 <= mid.progress["percent"] < 100
    # the tqdm bar's "k/n" too: the sampler's step of its steps (its num_inference_steps)
    steps = req.request.steps or 28  # flux-dev's default, as the fake prints it
    assert mid.progress["steps"] == steps and 0 <= mid.progress["step"] < steps, mid.progress


async def test_cancel_ends_as_canceled(
    replicate_fake: Running, provider: ReplicateProvider
) -> None:
    await replicate_fake.control(latency_s=5.0)
    req = preq("replicate", model="flux-dev")
    upd = await provider.submit(req)
    await provider.cancel(upd.provider_job_id, req)
    after = await provider.poll(upd.provider_job_id, req)
    assert after.state is RunState.CANCELED and after.billable is False


async def test_unknown_prediction_is_job_lost(provider: ReplicateProvider) -> None:
    with pytest.raises(ProviderJobLost):
        await provider.poll("doesnotexist", preq("replicate", model="flux-dev"))


# --- errors ----------------------------------------------------------------------------------


async def test_429_maps_to_rate_limited_with_retry_after(
    replicate_fake: Running, provider: ReplicateProvider
) -> None:
    await replicate_fake.control(rate_limit_next=1, retry_after="7")
    with pytest.raises(ProviderRateLimited) as exc:
        await provider.submit(preq("replicate", model="flux-dev"))
    assert exc.value.retry_after == 7.0
    assert (await replicate_fake.stats())["creates_total"] == 0


async def test_429_with_http_date_retry_after(
    replicate_fake: Running, provider: ReplicateProvider
) -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    await replicate_fake.control(rate_limit_next=1, retry_after=when)
    with pytest.raises(ProviderRateLimited) as exc:
        await provider.submit(preq("replicate", model="flux-dev"))
    assert exc.value.retry_after is not None and 25 <= exc.value.retry_after <= 31


async def test_5xx_maps_to_unavailable(
    replicate_fake: Running, provider: ReplicateProvider
) -> None:
    await replicate_fake.control(error_next=1, error_status=502)
    with pytest.raises(ProviderUnavailable):
        await provider.submit(preq("replicate", model="flux-dev"))


async def test_hang_maps_to_unavailable_on_timeout(replicate_fake: Running) -> None:
    await replicate_fake.control(hang_next=1, hang_s=5.0)
    p = ReplicateProvider(REPLICATE_TOKEN, base_url=replicate_fake.url, timeout=httpx.Timeout(0.3))
    try:
        with pytest.raises(ProviderUnavailable, match="ReadTimeout") as exc:
            await p.submit(preq("replicate", model="flux-dev"))
        assert exc.value.extra["ambiguous"] is True  # the create may have happened
    finally:
        await p.aclose()


async def test_bad_token_names_the_variable_and_hides_the_token(replicate_fake: Running) -> None:
    p = ReplicateProvider("r8_wrong_token_value", base_url=replicate_fake.url)
    try:
        with pytest.raises(ProviderAuthError) as exc:
            await p.submit(preq("replicate", model="flux-dev"))
    finally:
        await p.aclose()
    assert "REPLICATE_API_TOKEN" in str(exc.value) and "r8_wrong_token_value" not in str(exc.value)


async def test_invalid_input_maps_to_invalid_input_with_field(provider: ReplicateProvider) -> None:
    req = preq("replicate", model="flux-schnell")
    bad = req.request.__class__(**{**req.request.to_dict(), "steps": 9})
    with pytest.raises(ProviderInvalidInput, match="num_inference_steps"):
        await provider.submit(ProviderRequest("j", 1, bad, req.model_id))


@pytest.mark.parametrize("marker", ["[nsfw]", "[blocked]"])
async def test_content_failures_map_to_content_rejected(
    provider: ReplicateProvider, marker: str
) -> None:
    req = preq("replicate", model="flux-dev", prompt=f"a fox {marker}")
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.FAILED
    assert isinstance(done.error, ProviderContentRejected)


async def test_expired_output_url_answers_410(
    replicate_fake: Running, provider: ReplicateProvider
) -> None:
    req = preq("replicate", model="flux-schnell")
    done = await finish(provider, await provider.submit(req), req)
    await replicate_fake.control(expire_outputs=True)
    async with httpx.AsyncClient() as c:
        assert (await c.get(str(done.outputs[0].url))).status_code == 410


# --- webhooks --------------------------------------------------------------------------------


async def test_webhook_is_verified_with_the_fetched_secret(
    provider: ReplicateProvider, receiver: Receiver
) -> None:
    req = preq("replicate", webhook_url=receiver.url, model="flux-dev")
    upd = await provider.submit(req)
    headers, body = await receiver.next()
    assert json.loads(body)["status"] == "succeeded"
    parsed = await provider.parse_webhook(headers, body)
    assert parsed.provider_job_id == upd.provider_job_id and parsed.state is RunState.SUCCEEDED
    assert parsed.delivery_id == headers["webhook-id"] and parsed.outputs


async def test_webhook_with_configured_secret(replicate_fake: Running, receiver: Receiver) -> None:
    secret = replicate_fake.fake.webhook_secret
    p = ReplicateProvider("unused", base_url="http://127.0.0.1:9", webhook_secret=secret)
    await _submit_with(replicate_fake, receiver)
    headers, body = await receiver.next()
    try:
        assert (await p.parse_webhook(headers, body)).state is RunState.SUCCEEDED
    finally:
        await p.aclose()


async def _submit_with(fake: Running, receiver: Receiver) -> None:
    p = ReplicateProvider(REPLICATE_TOKEN, base_url=fake.url)
    try:
        await p.submit(preq("replicate", webhook_url=receiver.url, model="flux-dev"))
    finally:
        await p.aclose()


async def test_forged_tampered_and_wrong_key_webhooks_are_unauthorized(
    provider: ReplicateProvider, receiver: Receiver
) -> None:
    await provider.submit(preq("replicate", webhook_url=receiver.url, model="flux-dev"))
    headers, body = await receiver.next()
    forged = {**headers, "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    tampered = body.replace(b'"succeeded"', b'"failed"')
    wrong_key = {
        **headers,
        "webhook-signature": standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            headers["webhook-id"],
            int(headers["webhook-timestamp"]),
            body,
        ),
    }
    for h, b in [(forged, body), (headers, tampered), (wrong_key, body), ({}, body)]:
        with pytest.raises(Unauthorized):
            await provider.parse_webhook(h, b)


async def test_replayed_webhook_outside_five_minutes_is_unauthorized(
    replicate_fake: Running, provider: ReplicateProvider, receiver: Receiver
) -> None:
    await replicate_fake.control(webhook_timestamp_skew_s=-400)
    await provider.submit(preq("replicate", webhook_url=receiver.url, model="flux-dev"))
    headers, body = await receiver.next()
    with pytest.raises(Unauthorized, match="tolerance"):
        await provider.parse_webhook(headers, body)


async def test_captured_webhook_replayed_later_is_unauthorized(
    replicate_fake: Running, receiver: Receiver
) -> None:
    clock = [time.time()]
    p = ReplicateProvider(REPLICATE_TOKEN, base_url=replicate_fake.url, clock=lambda: clock[0])
    try:
        await p.submit(preq("replicate", webhook_url=receiver.url, model="flux-dev"))
        headers, body = await receiver.next()
        assert (await p.parse_webhook(headers, body)).state is RunState.SUCCEEDED
        clock[0] += 301
        with pytest.raises(Unauthorized):
            await p.parse_webhook(headers, body)
    finally:
        await p.aclose()


async def test_terminal_webhook_is_retried_after_5xx(
    provider: ReplicateProvider, receiver: Receiver, replicate_fake: Running
) -> None:
    receiver.fail_first = 2
    await provider.submit(preq("replicate", webhook_url=receiver.url, model="flux-dev"))
    headers, body = await receiver.next()
    assert receiver.attempts == 3
    assert (await provider.parse_webhook(headers, body)).state is RunState.SUCCEEDED
    assert (await replicate_fake.stats())["webhooks"]["refused"] == 2


async def test_duplicate_webhooks_share_one_delivery_id(
    provider: ReplicateProvider, receiver: Receiver, replicate_fake: Running
) -> None:
    await replicate_fake.control(duplicate_webhooks=True)
    await provider.submit(preq("replicate", webhook_url=receiver.url, model="flux-dev"))
    first = await provider.parse_webhook(*(await receiver.next()))
    second = await provider.parse_webhook(*(await receiver.next()))
    assert first.delivery_id == second.delivery_id


async def test_out_of_order_stale_webhook_arrives_after_terminal(
    provider: ReplicateProvider, receiver: Receiver, replicate_fake: Running
) -> None:
    await replicate_fake.control(out_of_order_webhooks=True)
    await provider.submit(preq("replicate", webhook_url=receiver.url, model="flux-dev"))
    first = await provider.parse_webhook(*(await receiver.next()))
    stale = await provider.parse_webhook(*(await receiver.next()))
    assert first.state is RunState.SUCCEEDED and stale.state is RunState.RUNNING
    assert first.delivery_id != stale.delivery_id


async def test_lost_webhook_is_never_sent(
    provider: ReplicateProvider, receiver: Receiver, replicate_fake: Running
) -> None:
    await replicate_fake.control(lose_webhook_next=1)
    req = preq("replicate", webhook_url=receiver.url, model="flux-dev")
    done = await finish(provider, await provider.submit(req), req)
    assert done.state is RunState.SUCCEEDED
    with pytest.raises(TimeoutError):
        await receiver.next(timeout=0.5)
    assert (await replicate_fake.stats())["webhooks"]["lost"] == 1


# --- finding a run whose create answer was lost ----------------------------------------------------


async def test_find_run_returns_the_run_made_for_this_request(
    provider: ReplicateProvider, replicate_fake: Running
) -> None:
    since = time.time()
    mine = preq("replicate", model="flux-dev", prompt="a lost lighthouse", seed=11)
    other = preq("replicate", model="flux-dev", prompt="another lighthouse", seed=11)
    await provider.submit(other)
    made = await provider.submit(mine)
    await provider.submit(other)
    found = await provider.find_run(mine, since)
    assert found is not None and found.provider_job_id == made.provider_job_id
    # nothing made for it: None (never a look-alike)
    alone = preq("replicate", model="flux-dev", prompt="never submitted", seed=11)
    assert await provider.find_run(alone, since) is None
    # made before the attempt started (less the skew margin): not this attempt's run
    assert await provider.find_run(mine, time.time() + 60) is None


async def test_find_run_tells_attempts_apart_by_their_webhook(
    provider: ReplicateProvider, replicate_fake: Running
) -> None:
    since = time.time()
    first = preq("replicate", "https://hooks.example/r?run=job_1.1.x", model="flux-dev", seed=3)
    second = preq("replicate", "https://hooks.example/r?run=job_1.2.y", model="flux-dev", seed=3)
    made = await provider.submit(second)
    assert await provider.find_run(first, since) is None  # same input, another attempt's run
    found = await provider.find_run(second, since)
    assert found is not None and found.provider_job_id == made.provider_job_id


async def test_predictions_list_pages_newest_first(
    provider: ReplicateProvider, replicate_fake: Running
) -> None:
    for i in range(3):
        await provider.submit(preq("replicate", model="flux-dev", prompt=f"page {i}", seed=i))
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {REPLICATE_TOKEN}"}) as c:
        page = (await c.get(f"{replicate_fake.url}/v1/predictions")).json()
        assert set(page) == {"next", "previous", "results"}
        created = [p["created_at"] for p in page["results"]]
        assert created == sorted(created, reverse=True) and len(created) >= 3
        future = (
            await c.get(f"{replicate_fake.url}/v1/predictions?created_after=2999-01-01T00:00:00Z")
        ).json()
        assert future["results"] == [] and future["next"] is None
