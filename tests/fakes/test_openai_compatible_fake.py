"""The OpenAI-compatible image server fake (SGLang diffusion, vLLM-Omni) over real sockets."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelpipe.fakes.openai_compatible import FakeOpenAICompatible, OpenAICompatibleBehaviour
from pixelpipe.fakes.server import serve_app

MODEL = "Qwen/Qwen-Image"
GEN = "/v1/images/generations"


@pytest.fixture(params=["sglang", "vllm-omni"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    behaviour = OpenAICompatibleBehaviour(latency_s=0.1, crash_restart_s=0.8)
    fake = FakeOpenAICompatible(model=MODEL, flavour=request.param, behaviour=behaviour)
    async with serve_app(fake.app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield request.param, client


def gen(**kw: Any) -> dict[str, Any]:
    body = {"prompt": "a red fox", "size": "64x48", "seed": 7, "response_format": "b64_json"}
    return body | kw


def error_message(flavour: str, body: dict[str, Any]) -> str:
    """The message of an HTTPException in the flavour's shape (and checks that shape)."""
    if flavour == "sglang":
        assert set(body) == {"detail"}
        return str(body["detail"])
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return str(body["error"]["message"])


async def test_generation_answers_b64_pngs_with_the_extension_fields(server: Any) -> None:
    flavour, c = server
    extensions = {
        "negative_prompt": "blurry",
        "num_inference_steps": 8,
        "guidance_scale": 3.5,
        "true_cfg_scale": 4.0,
        "n": 2,
        "model": MODEL,
    }
    started = time.monotonic()
    resp = await c.post(GEN, json=gen(**extensions))
    assert resp.status_code == 200 and time.monotonic() - started >= 0.1  # latency_s
    body = resp.json()
    images = [Image.open(io.BytesIO(base64.b64decode(d["b64_json"]))) for d in body["data"]]
    assert [i.size for i in images] == [(64, 48), (64, 48)] and images[0].format == "PNG"
    assert all(d["url"] is None for d in body["data"])
    same = (await c.post(GEN, json=gen())).json()["data"][0]["b64_json"]
    assert same == body["data"][0]["b64_json"]  # same seed, same picture
    if flavour == "sglang":
        assert {"id", "created", "data", "peak_memory_mb", "inference_time_s"} <= set(body)
        assert body["data"][0]["revised_prompt"] == "a red fox"
    else:
        assert body["output_format"] == "png" and body["size"] == "64x48"
        assert body["data"][0]["revised_prompt"] is None


async def test_another_model_name_is_served_by_the_one_model(server: Any) -> None:
    _, c = server
    resp = await c.post(GEN, json=gen(model="black-forest-labs/FLUX.1-dev"))
    assert resp.status_code == 200 and len(resp.json()["data"]) == 1


async def test_an_old_server_rejects_another_model_name(server: Any) -> None:
    flavour, c = server
    await c.post("/_control", json={"reject_other_model": True})
    resp = await c.post(GEN, json=gen(model="other"))
    assert resp.status_code == 400
    assert error_message(flavour, resp.json()).startswith(
        "Model mismatch: request specifies 'other'"
    )
    assert (await c.post(GEN, json=gen(model=MODEL))).status_code == 200


async def test_url_outputs_are_refused(server: Any) -> None:
    flavour, c = server
    resp = await c.post(GEN, json=gen(response_format="url"))
    assert resp.status_code == 400
    stats = (await c.get("/_stats")).json()
    if flavour == "sglang":  # refused after generating: the GPU time is spent
        assert resp.json() == {
            "detail": "response_format='url' requires cloud storage to be configured."
        }
        assert stats["creates_total"] == 1
        omitted = await c.post(GEN, json={"prompt": "x", "size": "16x16"})  # its default is url
        assert omitted.status_code == 400
    else:  # refused in validation, as vLLM wraps it
        assert "Only 'b64_json' or 'file' response format is supported" in error_message(
            flavour, resp.json()
        )
        assert resp.json()["error"]["type"] == "Bad Request" and stats["creates_total"] == 0
        omitted = await c.post(
            GEN, json={"prompt": "x", "size": "16x16"}
        )  # its default is b64_json
        assert omitted.status_code == 200


async def test_validation_errors_have_each_servers_shape(server: Any) -> None:
    flavour, c = server
    missing = await c.post(GEN, json={"size": "64x64"})
    wrong = await c.post(GEN, json=gen(num_inference_steps="many"))
    if flavour == "sglang":  # FastAPI's own 422
        assert missing.status_code == wrong.status_code == 422
        error = missing.json()["detail"][0]
        assert error["type"] == "missing" and error["loc"] == ["body", "prompt"]
        assert error["msg"] == "Field required"
        assert wrong.json()["detail"][0]["type"] == "int_parsing"
    else:  # vLLM turns them into 400 and its envelope
        assert missing.status_code == wrong.status_code == 400
        assert (
            missing.json()["error"]["code"] == 400
            and "prompt" in missing.json()["error"]["message"]
        )
        too_many = await c.post(GEN, json=gen(n=11))
        assert too_many.status_code == 400 and "less than or equal to 10" in error_message(
            flavour, too_many.json()
        )
        no_x = await c.post(GEN, json=gen(size="64by64"))  # the field validator
        assert no_x.status_code == 400 and "WIDTHxHEIGHT" in error_message(flavour, no_x.json())
        bad_size = await c.post(GEN, json=gen(size="64xtall"))  # parse_size in the handler
        assert error_message(flavour, bad_size.json()) == (
            "Invalid size format: '64xtall'. Width and height must be integers."
        )


@pytest.mark.parametrize("knob", ["fail_next", "oom_next"])
async def test_a_failed_generation_is_a_500(server: Any, knob: str) -> None:
    flavour, c = server
    await c.post("/_control", json={knob: 1})
    resp = await c.post(GEN, json=gen())
    assert resp.status_code == 500
    if flavour == "sglang":  # an uncaught RuntimeError
        assert resp.headers["content-type"].startswith("text/plain")
        assert resp.text == "Internal Server Error"
    else:
        message = error_message(flavour, resp.json())
        assert message.startswith("Image generation failed: ")
        assert ("CUDA out of memory" in message) == (knob == "oom_next")
    assert (await c.post(GEN, json=gen())).status_code == 200


@pytest.mark.parametrize("status", [503, 500])
async def test_injected_errors_use_the_servers_http_exception_shape(
    server: Any, status: int
) -> None:
    flavour, c = server
    await c.post("/_control", json={"error_next": 1, "error_status": status})
    resp = await c.post(GEN, json=gen())
    assert resp.status_code == status
    phrase = "Service Unavailable" if status == 503 else "Internal Server Error"
    assert error_message(flavour, resp.json()) == phrase
    if flavour == "vllm-omni":
        assert resp.json()["error"] == {
            "message": phrase,
            "type": phrase,
            "param": None,
            "code": status,
        }


async def test_a_crash_drops_the_connection_and_the_queue(server: Any) -> None:
    _, c = server
    await c.post("/_control", json={"crash_next": 1})
    first = asyncio.create_task(c.post(GEN, json=gen()))
    await asyncio.sleep(0.02)
    queued = asyncio.create_task(c.post(GEN, json=gen(prompt="queued")))
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await first
    with pytest.raises(httpx.RemoteProtocolError):
        await queued
    with pytest.raises(httpx.RemoteProtocolError):
        await c.get("/health")  # still down
    await asyncio.sleep(0.85)
    assert (await c.get("/health")).status_code == 200
    assert (await c.post(GEN, json=gen())).status_code == 200


async def test_one_generation_at_a_time(server: Any) -> None:
    _, c = server
    started = time.monotonic()
    answers = await asyncio.gather(*(c.post(GEN, json=gen(seed=i)) for i in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert time.monotonic() - started >= 3 * 0.1


async def test_models_health_and_unknown_paths(server: Any) -> None:
    flavour, c = server
    models = (await c.get("/v1/models")).json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == [MODEL]
    assert models["data"][0]["object"] == "model"
    health = await c.get("/health")
    assert health.status_code == 200
    assert (health.json() == {"status": "ok"}) if flavour == "sglang" else (health.content == b"")
    missing = await c.get("/v1/images/variations")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    if flavour == "sglang":
        other = await c.get("/v1/models/someone/else")
        assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"
        assert (await c.get(f"/v1/models/{MODEL}")).json()["id"] == MODEL


@pytest.mark.parametrize("flavour", ["sglang", "vllm-omni"])
async def test_api_key_guards_v1_paths_only(flavour: Any) -> None:
    fake = FakeOpenAICompatible(
        flavour=flavour, api_key="sk-local", behaviour=OpenAICompatibleBehaviour(latency_s=0)
    )
    async with serve_app(fake.app) as url, httpx.AsyncClient(base_url=url) as c:
        anonymous = await c.post(GEN, json=gen())
        wrong = await c.get("/v1/models", headers={"authorization": "Bearer nope"})
        health = await c.get("/health")
        right = await c.post(GEN, json=gen(), headers={"authorization": "bearer sk-local"})
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json() == wrong.json() == {"error": "Unauthorized"}
    assert health.status_code == right.status_code == 200
