"""Self-hosted backends' health: each kind's check against its fake over real sockets, and the
engine's checker — a backend that is down is marked out (new jobs fail over), shown in readiness
(without making it fail), in the model list and in /metrics, and takes work again once back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from pixelpipe.api.routes_meta import model_public
from pixelpipe.backend_health import check_once
from pixelpipe.catalog import load_catalog
from pixelpipe.fakes.a1111 import FakeA1111
from pixelpipe.fakes.common import Behaviour
from pixelpipe.fakes.openai_compatible import FakeOpenAICompatible, OpenAICompatibleBehaviour
from pixelpipe.fakes.server import serve_app
from pixelpipe.intake import GenerationRequest, canonicalize
from pixelpipe.pipeline import Pipeline
from pixelpipe.providers.a1111.client import A1111Provider
from pixelpipe.providers.base import HealthState, ProviderRequest, ReportsHealth
from pixelpipe.providers.openai_compatible.client import OpenAICompatibleProvider
from pixelpipe.providers.registration import Backend
from pixelpipe.settings import load_settings
from pixelpipe.usecases.health import readiness

CLOSED = "http://127.0.0.1:9"  # discard port: nothing listens there


@pytest.mark.parametrize("flavour", ["sglang", "vllm"])
async def test_an_openai_compatible_server_is_ready_then_down_when_it_crashes(
    flavour: str,
) -> None:
    fake = FakeOpenAICompatible(flavour=flavour, api_key="sk-local")  # type: ignore[arg-type]
    async with serve_app(fake.app) as url:
        provider = OpenAICompatibleProvider(Backend("gpu1", "openai_compatible", url, "sk-local"))
        try:
            assert isinstance(provider, ReportsHealth)
            assert (await provider.backend_health()).state is HealthState.READY
            fake.switch.crash(restart_s=30.0)  # the connection closes unanswered
            down = await provider.backend_health()
            assert down.state is HealthState.DOWN and "/health" in down.detail
        finally:
            await provider.aclose()


async def test_an_openai_compatible_server_is_busy_while_our_generation_runs() -> None:
    fake = FakeOpenAICompatible(behaviour=OpenAICompatibleBehaviour(latency_s=1.0))
    async with serve_app(fake.app) as url:
        provider = OpenAICompatibleProvider(Backend("gpu1", "openai_compatible", url))
        request = canonicalize(
            GenerationRequest(prompt="a fox", model="preview", size="64x64"), load_catalog()
        )
        run = asyncio.create_task(
            provider.submit(ProviderRequest("job_1", 1, request, "Qwen/Qwen-Image"))
        )
        try:
            for _ in range(100):
                health = await provider.backend_health()
                if health.state is HealthState.BUSY:
                    break
                await asyncio.sleep(0.02)
            assert health.state is HealthState.BUSY and health.busy_slots == 1
            assert (await run).outputs
            after = await provider.backend_health()
            assert after.state is HealthState.READY and after.busy_slots == 0
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            await provider.aclose()


async def test_an_a1111_server_is_ready_busy_while_it_runs_then_down() -> None:
    fake = FakeA1111(behaviour=Behaviour(latency_s=1.0))
    async with serve_app(fake.app) as url:
        provider = A1111Provider(Backend("sd1", "a1111", url))
        try:
            health = await provider.backend_health()
            assert health.state is HealthState.READY and health.busy_slots == 0
            assert health.queued == 0
            async with httpx.AsyncClient() as client:
                body = {"prompt": "a fox", "steps": 20, "width": 64, "height": 64}
                run = asyncio.create_task(client.post(f"{url}/sdapi/v1/txt2img", json=body))
                for _ in range(100):  # a web UI user's job: the server's own progress says so
                    if (await provider.backend_health()).state is HealthState.BUSY:
                        break
                    await asyncio.sleep(0.02)
                else:
                    pytest.fail("the server never reported its running job")
                fake.switch.crash(restart_s=30.0)
                assert (await provider.backend_health()).state is HealthState.DOWN
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
        finally:
            await provider.aclose()


async def test_an_unreachable_server_is_down_for_both_kinds() -> None:
    kinds: list[OpenAICompatibleProvider | A1111Provider] = [
        OpenAICompatibleProvider(Backend("gpu1", "openai_compatible", CLOSED)),
        A1111Provider(Backend("sd1", "a1111", CLOSED)),
    ]
    for provider in kinds:
        try:
            assert (await provider.backend_health()).state is HealthState.DOWN
        finally:
            await provider.aclose()


FILE = """\
[backends.gpu1]
kind = "openai_compatible"
url = "{url}"

[models.preview]
backends = ["gpu1", "preview"]
max_input_images = 0  # text only: gpu1 (an OpenAI-compatible server) takes no mask

[models.preview.ids]
gpu1 = "Qwen/Qwen-Image"
"""


async def test_a_down_backend_is_skipped_shown_and_taken_back(tmp_path: Path) -> None:
    fake = FakeOpenAICompatible(behaviour=OpenAICompatibleBehaviour(latency_s=0.01))
    async with serve_app(fake.app) as url:
        path = tmp_path / "catalog.toml"
        path.write_text(FILE.format(url=url))
        settings = load_settings(data_dir=tmp_path / "data", catalog_path=path)
        async with Pipeline(settings) as p:
            svc = p.services
            assert (await check_once(svc, down_for_s=0.5))["gpu1"].state is HealthState.READY
            assert model_public(svc, svc.catalog.models["preview"]).provider_states == {
                "gpu1": "ready"
            }
            up = await p.generate("a fox", model="preview", size="64x64", seed=1)
            assert up.job.provider == "gpu1"

            fake.switch.crash(restart_s=1.0)
            assert (await check_once(svc, down_for_s=0.5))["gpu1"].state is HealthState.DOWN
            assert not svc.gate.available("gpu1")
            failed_over = await p.generate("a fox", model="preview", size="64x64", seed=2)
            assert failed_over.job.provider == "preview"
            ready = await readiness(svc)
            assert ready.ok, "a GPU server that is down must not make the process unready"
            assert ready.gpu_backends["gpu1"]["state"] == "down"
            assert model_public(svc, svc.catalog.models["preview"]).provider_states == {
                "gpu1": "down"
            }
            metrics = svc.metrics.render().decode()
            assert 'pixelpipe_backend_health{backend="gpu1",state="down"} 1.0' in metrics
            assert 'pixelpipe_backend_health{backend="gpu1",state="ready"} 0.0' in metrics

            await asyncio.sleep(1.1)  # the server restarts; the outage mark (0.5 s) ran out
            assert (await check_once(svc, down_for_s=0.5))["gpu1"].state is HealthState.READY
            assert svc.gate.available("gpu1")
            back = await p.generate("a fox", model="preview", size="64x64", seed=3)
            assert back.job.provider == "gpu1"
