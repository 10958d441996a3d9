"""examples/cog-diffusers under a REAL cog server (coglet 0.23.1, tests/servers/cog.py), with
its stub pipeline in place of the GPU, called by pixelpipe's cog backend as a catalog backend
would call it: the image comes back decoded, the seed is honoured, the backend's
``options.input`` reaches the predictor, a bad input fails the prediction with the predictor's
message, and a run without a seed reports the seed it drew. One server for the module."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image
from pipelines import stub_colour

from pixelpipe.errors import ProviderFailed
from pixelpipe.providers.base import ProviderRequest, ProviderUpdate, RunState
from pixelpipe.providers.cog import REGISTRATION
from pixelpipe.providers.cog.client import CogProvider
from pixelpipe.providers.registration import Backend, BuildContext
from pixelpipe.settings import load_settings
from tests.examples import EXAMPLE_DIR
from tests.providers.conftest import canon
from tests.servers.cog import CogServer

SETTINGS = load_settings(secret_key="cog-diffusers-example-secret-0123456789")
MODEL_ID = "black-forest-labs/FLUX.1-schnell"  # the example's default model (its stub here)


@pytest.fixture(scope="module")
def example_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CogServer]:
    """The example served as cog.yaml says (its ``run`` ref), the stub pipeline chosen by env."""
    ref = yaml.safe_load((EXAMPLE_DIR / "cog.yaml").read_text())["run"]
    server = CogServer(
        tmp_path_factory.mktemp("cog-diffusers"),
        predictor_dir=EXAMPLE_DIR,
        predictor_ref=ref,
        env={"PIXELPIPE_EXAMPLE_PIPELINE": "stub", "PIXELPIPE_EXAMPLE_MODEL": MODEL_ID},
    )
    with server:
        yield server


@pytest.fixture
async def backend_for(example_server: CogServer) -> AsyncIterator[Any]:
    """``backend_for(**inputs)``: a cog provider on the example's server, built from a catalog
    backend whose ``options.input`` is ``inputs``; the server is READY before each call."""
    built: list[CogProvider] = []

    async def make(**inputs: Any) -> CogProvider:
        backend = Backend(
            name="gpu_a", kind="cog", url=example_server.url, options={"input": inputs}
        )
        assert REGISTRATION.backend is not None
        provider = REGISTRATION.backend(backend, BuildContext(SETTINGS))
        assert isinstance(provider, CogProvider)
        built.append(provider)
        await wait_ready(provider)
        return provider

    yield make
    for provider in built:
        await provider.aclose()


async def wait_ready(provider: CogProvider, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):  # a run's slot frees just after its answer
        while await provider.health() != "READY":
            await asyncio.sleep(0.05)


async def generate(provider: CogProvider, **kw: Any) -> ProviderUpdate:
    req = ProviderRequest(f"job_{uuid.uuid4().hex[:12]}", 1, canon(**kw), MODEL_ID, None)
    return await provider.submit(req)  # no webhook URL: a synchronous prediction


@pytest.mark.servers
async def test_cog_backend_gets_the_image_of_its_seed_decoded(backend_for: Any) -> None:
    provider = await backend_for()
    update = await generate(
        provider, model="flux-schnell", prompt="a lighthouse", seed=1234, aspect_ratio="16:9"
    )
    assert update.state is RunState.SUCCEEDED, update.error
    (output,) = update.outputs
    assert output.content_type == "image/png" and output.data is not None
    image = Image.open(io.BytesIO(output.data))
    assert (image.format, image.size) == ("PNG", (1344, 768))
    assert image.getpixel((0, 0)) == stub_colour("a lighthouse", 1234, 0)
    assert image.getpixel((0, 0)) != stub_colour("a lighthouse", 1235, 0)
    assert update.gpu_time_source == "server" and update.gpu_seconds is not None


@pytest.mark.servers
async def test_backend_options_reach_the_predictor_and_bad_inputs_fail_with_its_message(
    backend_for: Any,
) -> None:
    webp = await generate(await backend_for(output_format="webp"), model="flux-schnell", seed=5)
    assert webp.state is RunState.SUCCEEDED, webp.error
    assert webp.outputs[0].content_type == "image/webp"
    failed = await generate(await backend_for(width=100), model="flux-schnell", seed=5)
    assert failed.state is RunState.FAILED and isinstance(failed.error, ProviderFailed)
    assert "width must be between 128 and 2048, not 100" in str(failed.error)


@pytest.mark.servers
async def test_a_run_without_a_seed_reports_the_seed_it_drew(
    example_server: CogServer, backend_for: Any
) -> None:
    await backend_for()  # waits for READY
    async with httpx.AsyncClient(base_url=example_server.url, timeout=30) as client:
        body = {"input": {"prompt": "x", "width": 256}}
        for _ in range(50):  # coglet frees the slot just after a run's answer: 409 meanwhile
            resp = await client.post("/predictions", json=body)
            if resp.status_code != 409:
                break
            await asyncio.sleep(0.1)
    pred = resp.json()
    assert pred["status"] == "succeeded", pred
    seed = pred["metrics"]["seed"]
    assert isinstance(seed, int) and 0 <= seed <= 2**32 - 1
    assert f"seed {seed} (random): 1 image(s) 256x1024, 4 steps, guidance 0.0" in pred["logs"]
    assert pred["metrics"]["steps"] == 4 and pred["metrics"]["width"] == 256
