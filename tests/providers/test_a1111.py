"""The a1111 backend kind against the AUTOMATIC1111 fake, over real sockets."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from pixelpipe.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderRateLimited,
    ProviderUnavailable,
    Unauthorized,
)
from pixelpipe.fakes.a1111 import A1111Behaviour, FakeA1111
from pixelpipe.fakes.a1111_schema import Checkpoint
from pixelpipe.fakes.server import serve_app
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.a1111 import REGISTRATION
from pixelpipe.providers.a1111.client import A1111Provider
from pixelpipe.providers.a1111.progress import Progress
from pixelpipe.providers.base import ProviderRequest, RunState, WatchesProgress
from pixelpipe.providers.previews import PREVIEW_MAX_BYTES
from pixelpipe.providers.registration import Backend, BuildContext
from pixelpipe.settings import load_settings

from .asgi_recorder import Recorder

SDXL = "sd_xl_base_1.0.safetensors"
SD15 = "v1-5-pruned-emaonly.safetensors"
TXT2IMG = "/sdapi/v1/txt2img"


@dataclass
class Server:
    fake: FakeA1111
    seen: Recorder
    url: str

    def provider(self, **backend: Any) -> A1111Provider:
        fields: dict[str, Any] = {"source": "catalog.toml:12"}
        return A1111Provider(Backend(name="a1", kind="a1111", url=self.url, **(fields | backend)))


async def serve(auth: tuple[str, str] | None = None) -> AsyncIterator[Server]:
    behaviour = A1111Behaviour(step_s=0.01, crash_restart_s=0.5)
    fake = FakeA1111(auth=auth, behaviour=behaviour)
    seen = Recorder(fake.app)
    async with serve_app(seen) as url:
        yield Server(fake, seen, url)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async for running in serve():
        yield running


def job(job_id: str = "job_1", **kw: Any) -> ProviderRequest:
    fields: dict[str, Any] = {"negative_prompt": "blurry", "steps": 4, "guidance": 6.5} | kw
    req = CanonicalRequest("my-sdxl", "a red fox", 42, 64, 48, "png", **fields)
    return ProviderRequest(job_id, 1, req, "my-sdxl")


async def test_txt2img_sends_the_request_and_keeps_images_and_info(server: Server) -> None:
    provider = server.provider(options={"checkpoint": SD15, "sampler": "DPM++ 2M"})
    update = await provider.submit(job(steps=10))
    await provider.aclose()
    assert update.state is RunState.SUCCEEDED and update.error is None
    out = update.outputs[0]
    assert out.content_type == "image/png" and out.data is not None
    assert Image.open(io.BytesIO(out.data)).size == (64, 48)
    assert server.seen.sent(TXT2IMG)[0].json() == {
        "prompt": "a red fox",
        "negative_prompt": "blurry",
        "seed": 42,
        "width": 64,
        "height": 48,
        "batch_size": 1,
        "n_iter": 1,
        "send_images": True,
        "save_images": False,
        "steps": 10,
        "cfg_scale": 6.5,
        "sampler_name": "DPM++ 2M",
        "override_settings": {"sd_model_checkpoint": SD15},
    }
    info = update.usage["info"]  # parsed from A1111's JSON string; the job keeps usage
    assert info["sd_model_name"] == "v1-5-pruned-emaonly" and info["all_seeds"] == [42]
    assert info["sampler_name"] == "DPM++ 2M" and "Seed: 42" in info["infotexts"][0]
    assert update.usage["images"] == 1
    assert update.gpu_time_source == "wall"
    assert update.gpu_seconds is not None and update.gpu_seconds >= 10 * 0.01


async def test_defaults_from_the_options_when_the_request_has_none(server: Server) -> None:
    provider = server.provider(options={"steps": 3, "cfg_scale": 5, "scheduler": "Karras"})
    await provider.submit(job(steps=None, guidance=None, negative_prompt=None))
    await provider.aclose()
    sent = server.seen.sent(TXT2IMG)[0].json()
    assert (sent["steps"], sent["cfg_scale"], sent["scheduler"]) == (3, 5, "Karras")
    assert sent["negative_prompt"] == "" and "override_settings" not in sent


@pytest.mark.parametrize(
    "name",
    [SDXL, "sd_xl_base_1.0", Checkpoint(SDXL).title, Checkpoint(SDXL).shorthash],
)
async def test_a_checkpoint_named_any_way_a1111_accepts_is_recognised(
    server: Server, name: str
) -> None:
    provider = server.provider(options={"checkpoint": name})
    update = await provider.submit(job())
    await provider.aclose()
    assert update.state is RunState.SUCCEEDED


async def test_a_silent_fallback_to_another_checkpoint_fails_the_run(server: Server) -> None:
    provider = server.provider(options={"checkpoint": "juggernaut_xl.safetensors"})
    update = await provider.submit(job())
    await provider.aclose()
    assert update.state is RunState.FAILED and update.outputs == ()
    assert isinstance(update.error, ProviderInvalidInput)
    message = str(update.error)
    assert "no checkpoint 'juggernaut_xl.safetensors'" in message
    assert f"fallback sd_xl_base_1.0 [{Checkpoint(SDXL).shorthash}]" in message
    assert "catalog.toml:12" in message and "/sdapi/v1/sd-models" in message
    assert update.gpu_seconds is not None and update.gpu_seconds > 0  # the GPU did run
    assert update.usage["info"]["sd_model_name"] == "sd_xl_base_1.0"


async def test_never_two_txt2img_in_flight_at_the_server(server: Server) -> None:
    provider = server.provider()
    updates = await asyncio.gather(
        provider.submit(job("a", steps=15)),
        provider.submit(job("b", steps=15)),
        provider.submit(job("c", steps=15)),
    )
    await provider.aclose()
    assert [u.state for u in updates] == [RunState.SUCCEEDED] * 3
    assert len(server.seen.sent(TXT2IMG)) == 3
    assert server.seen.most_in_flight[TXT2IMG] == 1  # A1111 would hold the others unanswered


async def test_progress_is_visible_while_a_slow_run_goes_on(server: Server) -> None:
    server.fake.knobs.step_s = 0.02
    provider = server.provider()
    first = asyncio.create_task(provider.submit(job("a", steps=30)))
    seen = [p async for p in provider.progress_of("a", interval_s=0.05)]
    await first
    await provider.aclose()
    running = [p for p in seen if p.state == "running"]
    assert len(running) >= 4
    fractions = [p.fraction for p in running]
    assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] <= 1
    assert {p.steps for p in running} == {30} and running[-1].step > running[0].step
    previews = [p.preview for p in running if p.preview]
    assert previews and Image.open(io.BytesIO(previews[-1])).format == "PNG"
    assert all(p.eta_s is not None and p.eta_s >= 0 for p in running)
    assert {p.job for p in running} == {"scripts_txt2img"}  # the API's job, never idle
    assert running[0].as_progress().keys() == {"state", "percent", "eta_s", "step", "steps"}
    shown = next(p for p in running if p.preview).as_progress()  # the preview, as a data: URL
    assert shown["preview"].startswith("data:image/png;base64,")


async def test_watch_progress_yields_progress_dicts_with_a_small_preview(server: Server) -> None:
    """What the worker writes as the job's progress events (``WatchesProgress``)."""
    server.fake.knobs.step_s = 0.02
    provider = server.provider()
    assert isinstance(provider, WatchesProgress)
    run = asyncio.create_task(provider.submit(job("a", steps=30)))
    seen = [p async for p in provider.watch_progress("a", interval_s=0.05)]
    await run
    await provider.aclose()
    assert len(seen) >= 4 and all(p["state"] == "running" for p in seen)
    percents = [p["percent"] for p in seen]
    assert percents == sorted(percents) and 0 < percents[0] < percents[-1] <= 100
    previews = [p["preview"] for p in seen if "preview" in p]
    assert previews and all(u.startswith("data:image/png;base64,") for u in previews)
    big = Progress("running", fraction=0.5, preview=b"\x89PNG" + bytes(PREVIEW_MAX_BYTES))
    assert "preview" not in big.as_progress()  # too large for an event: left out


async def test_a_job_waiting_for_the_slot_is_queued_with_its_position(server: Server) -> None:
    server.fake.knobs.step_s = 0.02
    provider = server.provider()
    first = asyncio.create_task(provider.submit(job("a", steps=20)))
    waiting = asyncio.create_task(provider.submit(job("b", steps=2)))
    await asyncio.sleep(0.1)
    watch = provider.progress_of("b", interval_s=0.02)
    queued = await anext(watch)
    assert queued == Progress("queued", position=1)
    assert queued.as_progress() == {"state": "queued", "percent": 0.0, "queue_position": 1}
    await watch.aclose()
    await asyncio.gather(first, waiting)
    await provider.aclose()


@pytest.mark.parametrize(
    ("knob", "match"),
    [
        ("fail_next", "HTTP 500: NansException: A tensor with all NaNs"),
        ("oom_next", "HTTP 500: OutOfMemoryError: CUDA out of memory"),
    ],
)
async def test_a_failure_mid_run_is_unavailable_with_a1111s_message(
    server: Server, knob: str, match: str
) -> None:
    provider = server.provider()
    setattr(server.fake.knobs, knob, 1)
    with pytest.raises(ProviderUnavailable, match=match):
        await provider.submit(job(steps=6))
    assert (await provider.submit(job())).state is RunState.SUCCEEDED  # the slot is free again
    await provider.aclose()


async def test_refused_requests_are_invalid_input_with_the_servers_message(
    server: Server,
) -> None:
    sampler = server.provider(options={"sampler": "Nope"})
    with pytest.raises(ProviderInvalidInput, match="HTTP 400: Sampler not found"):
        await sampler.submit(job())
    await sampler.aclose()
    invalid = server.provider(options={"steps": "many"})
    with pytest.raises(ProviderInvalidInput, match="HTTP 422: steps: value is not a valid integer"):
        await invalid.submit(job(steps=None))
    await invalid.aclose()


async def test_proxy_answers_rate_limited_and_unavailable(server: Server) -> None:
    provider = server.provider()
    server.fake.knobs.rate_limit_next = 1
    with pytest.raises(ProviderRateLimited, match="HTTP 429"):
        await provider.submit(job())
    server.fake.knobs.error_next, server.fake.knobs.error_status = 1, 502
    with pytest.raises(ProviderUnavailable, match="HTTP 502"):
        await provider.submit(job())
    server.fake.knobs.garbage_next = 1
    with pytest.raises(ProviderUnavailable, match="without a JSON object"):
        await provider.submit(job())
    await provider.aclose()


async def test_a_crash_mid_run_is_unavailable_for_it_and_the_job_behind_it(
    server: Server,
) -> None:
    provider = server.provider()
    server.fake.knobs.crash_next = 1
    results = await asyncio.gather(
        provider.submit(job("a", steps=20)),
        provider.submit(job("b", steps=2)),
        return_exceptions=True,
    )
    assert all(isinstance(r, ProviderUnavailable) for r in results), results
    assert "unreachable" in str(results[0])  # the connection closed unanswered
    await asyncio.sleep(0.6)  # the server restarts
    assert (await provider.submit(job("c"))).state is RunState.SUCCEEDED
    await provider.aclose()


async def test_cancel_interrupts_the_running_job_and_drops_a_waiting_one(server: Server) -> None:
    provider = server.provider()
    running = asyncio.create_task(provider.submit(job("a", steps=300)))
    waiting = asyncio.create_task(provider.submit(job("b")))
    await asyncio.sleep(0.15)
    await provider.cancel("x", job("b"))
    await provider.cancel("x", job("a"))
    one, two = await asyncio.gather(running, waiting)
    await provider.aclose()
    assert one.state is RunState.CANCELED and one.outputs == ()
    assert two.state is RunState.CANCELED
    assert len(server.seen.sent(TXT2IMG)) == 1  # "b" was never sent
    assert len(server.seen.sent("/sdapi/v1/interrupt")) == 1
    await provider.cancel("x", job("z"))  # neither waiting nor running: nothing to interrupt
    assert len(server.seen.sent("/sdapi/v1/interrupt")) == 1


async def test_api_auth_is_basic_user_password() -> None:
    async for server in serve(auth=("operator", "s3cret-pass")):
        wrong = server.provider(api_key="operator:wrong-password")
        with pytest.raises(ProviderAuthError) as caught:
            await wrong.submit(job())
        await wrong.aclose()
        assert "Incorrect username or password" in str(caught.value)
        assert "wrong-password" not in str(caught.value)
        assert "backend 'a1' (catalog.toml:12)" in str(caught.value)
        right = server.provider(api_key="operator:s3cret-pass")
        assert (await right.submit(job())).state is RunState.SUCCEEDED
        await right.aclose()
    with pytest.raises(ConfigError, match="user:password"):
        A1111Provider(Backend("a2", "a1111", "http://127.0.0.1:1", api_key="token-only"))


async def test_synchronous_runs_have_nothing_to_poll_or_hear(server: Server) -> None:
    provider = server.provider()
    with pytest.raises(ProviderJobLost):
        await provider.poll("x", job())
    with pytest.raises(Unauthorized):
        await provider.parse_webhook({}, b"{}")
    await provider.aclose()


async def test_the_registration_builds_one_provider_per_backend(server: Server) -> None:
    ctx = BuildContext(load_settings())
    assert REGISTRATION.build_provider(ctx) is None  # nothing configured by environment
    assert REGISTRATION.backend is not None
    provider = REGISTRATION.backend(Backend("a3", "a1111", server.url + "/", timeout_s=30), ctx)
    assert provider.name == "a3" and provider.supports_webhooks is False
    assert (await provider.submit(job())).state is RunState.SUCCEEDED
    await provider.aclose()
