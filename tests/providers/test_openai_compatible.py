"""The openai_compatible backend kind against the SGLang and vLLM-Omni fakes, over real sockets."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from pixelpipe.errors import (
    ProviderAuthError,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderRateLimited,
    ProviderUnavailable,
    Unauthorized,
)
from pixelpipe.fakes.openai_compatible import (
    OOM_MESSAGE,
    FakeOpenAICompatible,
    OpenAICompatibleBehaviour,
)
from pixelpipe.fakes.openai_compatible_schema import Flavour
from pixelpipe.fakes.server import serve_app
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import ProviderRequest, RunState
from pixelpipe.providers.openai_compatible import REGISTRATION
from pixelpipe.providers.openai_compatible.client import OpenAICompatibleProvider
from pixelpipe.providers.registration import Backend, BuildContext
from pixelpipe.settings import load_settings

from .asgi_recorder import Recorder

MODEL = "Qwen/Qwen-Image"
GEN = "/v1/images/generations"
KEY = "sk-local-0123456789"


@dataclass
class Server:
    flavour: str
    fake: FakeOpenAICompatible
    seen: Recorder
    url: str

    def provider(self, **backend: Any) -> OpenAICompatibleProvider:
        fields: dict[str, Any] = {"options": {"model": MODEL}, "source": "catalog.toml:7"}
        return OpenAICompatibleProvider(
            Backend(name="gpu1", kind="openai_compatible", url=self.url, **(fields | backend))
        )


async def serve(flavour: Flavour, api_key: str | None = None) -> AsyncIterator[Server]:
    behaviour = OpenAICompatibleBehaviour(latency_s=0.1, crash_restart_s=0.5, retry_after="2")
    fake = FakeOpenAICompatible(model=MODEL, flavour=flavour, api_key=api_key, behaviour=behaviour)
    seen = Recorder(fake.app)
    async with serve_app(seen) as url:
        yield Server(flavour, fake, seen, url)


@pytest.fixture(params=["sglang", "vllm-omni"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    async for running in serve(request.param):
        yield running


def job(model_id: str = "qwen-image", **kw: Any) -> ProviderRequest:
    fields: dict[str, Any] = {"negative_prompt": "blurry", "steps": 8, "guidance": 3.5} | kw
    req = CanonicalRequest("qwen-image", "a red fox", 42, 64, 48, "png", **fields)
    return ProviderRequest("job_1", 1, req, model_id)


async def test_a_generation_sends_the_extensions_and_b64_json_and_returns_the_image(
    server: Server,
) -> None:
    provider = server.provider(options={"model": MODEL, "true_cfg_scale": 4.0})
    update = await provider.submit(job())
    await provider.aclose()
    assert update.state is RunState.SUCCEEDED and len(update.outputs) == 1
    out = update.outputs[0]
    assert out.content_type == "image/png" and out.data is not None
    assert Image.open(io.BytesIO(out.data)).size == (64, 48)
    assert server.seen.sent(GEN)[0].json() == {
        "model": MODEL,
        "prompt": "a red fox",
        "n": 1,
        "size": "64x48",
        "seed": 42,
        "response_format": "b64_json",  # SGLang's default "url" fails after the run
        "negative_prompt": "blurry",
        "num_inference_steps": 8,
        "guidance_scale": 3.5,
        "true_cfg_scale": 4.0,
    }
    assert update.gpu_seconds is not None and update.gpu_seconds >= 0.09  # latency_s = 0.1
    # SGLang measures its own inference time; vLLM-Omni reports none: timed by pixelpipe
    assert update.gpu_time_source == ("server" if server.flavour == "sglang" else "wall")
    assert update.usage["images"] == 1 and update.usage["model"] == MODEL


async def test_fields_the_request_lacks_are_not_sent_and_model_id_names_the_model(
    server: Server,
) -> None:
    provider = server.provider(options={})
    update = await provider.submit(job(MODEL, negative_prompt=None, steps=None, guidance=None))
    await provider.submit(job(MODEL))  # the model list is read once
    await provider.aclose()
    assert update.state is RunState.SUCCEEDED
    sent = server.seen.sent(GEN)[0].json()
    assert sent["model"] == MODEL
    assert not {"negative_prompt", "num_inference_steps", "guidance_scale"} & set(sent)
    assert len(server.seen.sent("/v1/models")) == 1


async def test_a_server_running_another_model_is_refused_before_it_generates(
    server: Server,
) -> None:
    provider = server.provider(options={"model": "black-forest-labs/FLUX.1-dev"})
    with pytest.raises(ProviderInvalidInput) as caught:
        await provider.submit(job())
    await provider.aclose()
    message = str(caught.value)
    assert f"serves {MODEL}, not 'black-forest-labs/FLUX.1-dev'" in message
    assert "catalog.toml:7" in message and "model option" in message
    assert server.seen.sent(GEN) == []  # nothing generated (it would have used its own model)


async def test_validation_errors_carry_the_servers_message(server: Server) -> None:
    provider = server.provider(options={"model": MODEL, "true_cfg_scale": "high"})
    with pytest.raises(ProviderInvalidInput) as caught:
        await provider.submit(job())
    await provider.aclose()
    if server.flavour == "sglang":  # FastAPI's 422 {"detail": [{loc, msg, …}]}
        assert "HTTP 422" in str(caught.value)
        assert "true_cfg_scale: Input should be a valid number" in str(caught.value)
    else:  # vLLM's 400 {"error": {"message": …}}
        assert "HTTP 400" in str(caught.value) and "true_cfg_scale" in str(caught.value)


async def test_vllm_omni_size_error_is_invalid_input() -> None:
    async for server in serve("vllm-omni"):
        provider = server.provider()
        req = ProviderRequest("j", 1, CanonicalRequest("m", "a fox", 1, 0, 48, "png"), "m")
        with pytest.raises(ProviderInvalidInput, match="Invalid size: 0x48"):
            await provider.submit(req)
        await provider.aclose()


async def test_rate_limit_and_unavailable_answers(server: Server) -> None:
    provider = server.provider()
    server.fake.knobs.rate_limit_next = 1
    with pytest.raises(ProviderRateLimited) as limited:
        await provider.submit(job())
    assert limited.value.retry_after == 2.0
    server.fake.knobs.error_next, server.fake.knobs.error_status = 1, 503
    with pytest.raises(ProviderUnavailable, match="HTTP 503"):
        await provider.submit(job())
    server.fake.knobs.fail_next = 1
    with pytest.raises(ProviderUnavailable, match="HTTP 500") as failed:
        await provider.submit(job())
    server.fake.knobs.oom_next = 1
    with pytest.raises(ProviderUnavailable, match="HTTP 500") as oom:
        await provider.submit(job())
    assert (await provider.submit(job())).state is RunState.SUCCEEDED  # and then it works
    await provider.aclose()
    if server.flavour == "sglang":  # an uncaught RuntimeError: Starlette's plain-text 500
        assert "Internal Server Error" in str(failed.value)
    else:
        assert "Image generation failed" in str(failed.value)
        assert OOM_MESSAGE[:40] in str(oom.value)


async def test_a_server_dying_mid_generation_is_unavailable(server: Server) -> None:
    provider = server.provider()
    await provider.submit(job())
    server.fake.knobs.crash_next = 1
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await provider.submit(job())  # the connection closes unanswered
    with pytest.raises(ProviderUnavailable):
        await provider.submit(job())  # still down
    server.fake.model = "other/model"  # it restarts with another model
    await asyncio.sleep(0.6)
    with pytest.raises(ProviderInvalidInput, match="serves other/model"):
        await provider.submit(job())  # after an outage the model list is read again
    await provider.aclose()
    assert len(server.seen.sent("/v1/models")) == 3  # first, while down, after the restart


async def test_a_garbage_answer_is_unavailable(server: Server) -> None:
    provider = server.provider()
    server.fake.knobs.garbage_next = 1
    with pytest.raises(ProviderUnavailable, match="without a JSON object"):
        await provider.submit(job())
    await provider.aclose()


@pytest.mark.parametrize("flavour", ["sglang", "vllm-omni"])
async def test_api_key_is_sent_as_bearer_and_a_wrong_one_is_an_auth_error(
    flavour: Flavour,
) -> None:
    async for server in serve(flavour, api_key=KEY):
        wrong = server.provider(api_key="sk-wrong-key-000")
        with pytest.raises(ProviderAuthError) as caught:
            await wrong.submit(job())
        await wrong.aclose()
        assert "HTTP 401: Unauthorized" in str(caught.value)
        assert "api key of backend 'gpu1' (catalog.toml:7)" in str(caught.value)
        assert "sk-wrong-key-000" not in str(caught.value)
        right = server.provider(api_key=KEY)
        assert (await right.submit(job())).state is RunState.SUCCEEDED
        await right.aclose()
        assert server.seen.sent(GEN)[-1].headers["authorization"] == f"Bearer {KEY}"


async def test_synchronous_runs_have_nothing_to_poll_cancel_or_hear(server: Server) -> None:
    provider = server.provider()
    with pytest.raises(ProviderJobLost):
        await provider.poll("x", job())
    await provider.cancel("x", job())  # nothing to stop: no error, no call
    with pytest.raises(Unauthorized):
        await provider.parse_webhook({}, b"{}")
    await provider.aclose()


async def test_the_registration_builds_one_provider_per_backend(server: Server) -> None:
    ctx = BuildContext(load_settings())
    assert REGISTRATION.build_provider(ctx) is None  # nothing configured by environment
    assert REGISTRATION.backend is not None
    url = f"{server.url}/v1"  # a base URL given with /v1 works too
    backend = Backend("gpu2", "openai_compatible", url, options={"model": MODEL}, timeout_s=30)
    provider = REGISTRATION.backend(backend, ctx)
    assert provider.name == "gpu2" and provider.supports_webhooks is False
    assert (await provider.submit(job())).state is RunState.SUCCEEDED
    await provider.aclose()
