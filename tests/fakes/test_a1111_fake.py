"""The AUTOMATIC1111 fake over real sockets: its answers, errors, progress, queue and crashes."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelpipe.fakes.a1111 import A1111Behaviour, FakeA1111
from pixelpipe.fakes.server import serve_app

SDXL = "sd_xl_base_1.0.safetensors"
SD15 = "v1-5-pruned-emaonly.safetensors"
JSON = {"content-type": "application/json"}


@pytest.fixture
async def a1111() -> AsyncIterator[tuple[FakeA1111, httpx.AsyncClient]]:
    fake = FakeA1111(behaviour=A1111Behaviour(step_s=0.01, crash_restart_s=0.8))
    async with serve_app(fake.app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield fake, client


def txt(**kw: Any) -> dict[str, Any]:
    return {"prompt": "a red fox", "seed": 42, "steps": 4, "width": 64, "height": 48} | kw


def png(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


async def test_txt2img_answers_base64_pngs_with_info_and_parameters(a1111: Any) -> None:
    _, c = a1111
    resp = await c.post("/sdapi/v1/txt2img", json=txt(batch_size=2, n_iter=2, width=70))
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"images", "parameters", "info"}
    images = [png(b) for b in body["images"]]
    assert len(images) == 4 and images[0].size == (64, 48)  # 70 rounds down to a multiple of 8
    info = json.loads(body["info"])
    assert info["all_seeds"] == [42, 43, 44, 45] and info["seed"] == 42
    assert info["sd_model_name"] == "sd_xl_base_1.0" and info["steps"] == 4
    assert "Seed: 43" in info["infotexts"][1]
    assert images[1].info["parameters"] == info["infotexts"][1]
    assert body["parameters"]["prompt"] == "a red fox" and body["parameters"]["cfg_scale"] == 7.0
    again = await c.post("/sdapi/v1/txt2img", json=txt(send_images=False, seed=-1))
    assert again.json()["images"] == [] and json.loads(again.json()["info"])["seed"] != -1


async def test_progress_is_global_with_preview_while_a_job_runs(a1111: Any) -> None:
    _, c = a1111
    idle = (await c.get("/sdapi/v1/progress")).json()
    assert idle == {
        "progress": 0,
        "eta_relative": 0,
        "state": idle["state"],
        "current_image": None,
        "textinfo": None,
    }
    assert idle["state"]["job_count"] == 0 and idle["state"]["job"] == ""
    await c.post("/sdapi/v1/options", json={"show_progress_every_n_steps": 5})
    job = asyncio.create_task(c.post("/sdapi/v1/txt2img", json=txt(steps=40, n_iter=2)))
    seen: list[dict[str, Any]] = []
    while not job.done():
        seen.append((await c.get("/sdapi/v1/progress")).json())
        await asyncio.sleep(0.05)
    assert (await job).status_code == 200
    running = [p for p in seen if p["state"]["job_count"] == 2]
    assert len(running) >= 3
    assert all(0 < p["progress"] <= 1 for p in running)
    # the uncapped progress passes 1 on a job's last step: A1111's eta goes negative there
    assert all(p["eta_relative"] >= 0 for p in running if p["progress"] < 1)
    assert running[-1]["progress"] > running[0]["progress"]
    assert {p["state"]["job"] for p in running} == {"scripts_txt2img"}
    assert {p["state"]["sampling_steps"] for p in running} == {40}
    with_preview = [p for p in running if p["current_image"]]
    assert with_preview and png(with_preview[-1]["current_image"]).size == (8, 8)  # 1/8 size
    done = (await c.get("/sdapi/v1/progress")).json()
    assert done["progress"] == 0 and done["state"]["job_count"] == 0
    assert done["state"]["job_no"] == 2  # end() keeps the counters of the last job


async def test_skip_current_image_leaves_the_preview_out(a1111: Any) -> None:
    _, c = a1111
    await c.post("/sdapi/v1/options", json={"show_progress_every_n_steps": 1})
    job = asyncio.create_task(c.post("/sdapi/v1/txt2img", json=txt(steps=30)))
    await asyncio.sleep(0.15)
    with_image = (await c.get("/sdapi/v1/progress")).json()
    without = (await c.get("/sdapi/v1/progress", params={"skip_current_image": "true"})).json()
    await job
    assert with_image["current_image"] and without["current_image"] is None
    assert without["state"]["job_count"] == 1


async def test_one_generation_at_a_time_a_second_call_waits_unanswered(a1111: Any) -> None:
    _, c = a1111
    started = time.monotonic()
    first = asyncio.create_task(c.post("/sdapi/v1/txt2img", json=txt(steps=25, prompt="one")))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(c.post("/sdapi/v1/txt2img", json=txt(steps=25, prompt="two")))
    await asyncio.sleep(0.1)
    assert not second.done()  # neither refused nor answered: it waits on the queue lock
    progress = (await c.get("/sdapi/v1/progress")).json()
    assert progress["state"]["job_count"] == 1  # the first job's state only
    one, two = await first, await second
    assert one.status_code == two.status_code == 200
    assert json.loads(two.json()["info"])["prompt"] == "two"
    assert time.monotonic() - started >= 2 * 25 * 0.01


async def test_interrupt_stops_the_run_which_still_answers_its_images(a1111: Any) -> None:
    _, c = a1111
    started = time.monotonic()
    job = asyncio.create_task(c.post("/sdapi/v1/txt2img", json=txt(steps=300, n_iter=3)))
    await asyncio.sleep(0.1)
    stopped = await c.post("/sdapi/v1/interrupt")
    assert stopped.status_code == 200 and stopped.json() == {}
    resp = await job
    assert resp.status_code == 200 and len(resp.json()["images"]) == 1
    assert time.monotonic() - started < 300 * 0.01
    state = (await c.get("/sdapi/v1/progress")).json()["state"]
    assert state["interrupted"] is True


@pytest.mark.parametrize(
    ("knob", "error", "message"),
    [
        ("fail_next", "NansException", "A tensor with all NaNs"),
        ("oom_next", "OutOfMemoryError", "CUDA out of memory"),
    ],
)
async def test_a_failure_mid_run_is_a_500_in_a1111s_shape(
    a1111: Any, knob: str, error: str, message: str
) -> None:
    _, c = a1111
    await c.post("/_control", json={knob: 1})
    job = asyncio.create_task(c.post("/sdapi/v1/txt2img", json=txt(steps=20)))
    await asyncio.sleep(0.05)
    assert (await c.get("/sdapi/v1/progress")).json()["state"]["job_count"] == 1
    resp = await job
    assert resp.status_code == 500
    body = resp.json()
    assert set(body) == {"error", "detail", "body", "errors"}
    assert body["error"] == error and body["detail"] == "" and body["body"] == ""
    assert body["errors"].startswith(message)
    assert (await c.post("/sdapi/v1/txt2img", json=txt())).status_code == 200  # lock released


async def test_a_crash_mid_run_drops_the_connection_and_the_server_comes_back(a1111: Any) -> None:
    fake, c = a1111
    await c.post("/_control", json={"crash_next": 1})
    first = asyncio.create_task(c.post("/sdapi/v1/txt2img", json=txt(steps=20)))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(c.post("/sdapi/v1/txt2img", json=txt(prompt="queued")))
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await first
    with pytest.raises(httpx.RemoteProtocolError):
        await waiting  # the queue dies with the process
    with pytest.raises(httpx.RemoteProtocolError):
        await c.get("/sdapi/v1/progress")  # still down
    await asyncio.sleep(0.85)
    progress = (await c.get("/sdapi/v1/progress")).json()
    assert progress["state"]["job_no"] == 0 and progress["state"]["job_timestamp"] == "0"
    assert (await c.post("/sdapi/v1/txt2img", json=txt())).status_code == 200
    assert fake.switch.crashes == 1


async def test_busy_queue_another_users_job_holds_the_server(a1111: Any) -> None:
    _, c = a1111
    await c.post("/_control", json={"occupy_s": 0.4})
    await asyncio.sleep(0.05)
    busy = (await c.get("/sdapi/v1/progress")).json()
    assert busy["state"]["job"] == "txt2img" and busy["progress"] > 0
    started = time.monotonic()
    resp = await c.post("/sdapi/v1/txt2img", json=txt(steps=2))
    assert resp.status_code == 200 and time.monotonic() - started >= 0.25


async def test_request_errors_have_the_real_shapes(a1111: Any) -> None:
    _, c = a1111
    sampler = await c.post("/sdapi/v1/txt2img", json=txt(sampler_name="Nope"))
    assert sampler.status_code == 400
    assert sampler.json() == {
        "error": "HTTPException",
        "detail": "Sampler not found",
        "body": "",
        "errors": "400: Sampler not found",
    }
    ok = await c.post("/sdapi/v1/txt2img", json=txt(sampler_name="DPM++ 2M Karras"))
    assert ok.status_code == 200
    invalid = await c.post("/sdapi/v1/txt2img", json=txt(steps="many", width="wide"))
    assert invalid.status_code == 422
    assert invalid.json()["detail"] == [
        {
            "loc": ["body", "steps"],
            "msg": "value is not a valid integer",
            "type": "type_error.integer",
        },
        {
            "loc": ["body", "width"],
            "msg": "value is not a valid integer",
            "type": "type_error.integer",
        },
    ]
    broken = await c.post(
        "/sdapi/v1/txt2img", content=b"{", headers={"content-type": "application/json"}
    )
    assert (
        broken.status_code == 422 and broken.json()["detail"][0]["type"] == "value_error.jsondecode"
    )
    listed = await c.post("/sdapi/v1/txt2img", json=[txt()])
    assert listed.status_code == 422
    assert listed.json() == {
        "detail": [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]
    }
    coerced = await c.post("/sdapi/v1/txt2img", json=txt(steps="3", width=64.9))
    assert json.loads(coerced.json()["info"])["steps"] == 3  # pydantic 1 coerces like int()
    missing = await c.get("/sdapi/v1/nope")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}


async def test_api_auth_answers_401_with_a_basic_challenge() -> None:
    fake = FakeA1111(auth=("user", "pass"), behaviour=A1111Behaviour(step_s=0.0))
    async with serve_app(fake.app) as url, httpx.AsyncClient(base_url=url) as c:
        anonymous = await c.get("/sdapi/v1/sd-models")
        wrong = await c.get("/sdapi/v1/progress", auth=("user", "nope"))
        right = await c.post("/sdapi/v1/txt2img", json=txt(), auth=("user", "pass"))
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Basic"
    assert anonymous.json()["detail"] == "Not authenticated"
    assert wrong.json() == {
        "error": "HTTPException",
        "detail": "Incorrect username or password",
        "body": "",
        "errors": "401: Incorrect username or password",
    }
    assert right.status_code == 200


async def test_models_options_and_checkpoint_override(a1111: Any) -> None:
    _, c = a1111
    models = (await c.get("/sdapi/v1/sd-models")).json()
    assert [m["model_name"] for m in models] == ["sd_xl_base_1.0", "v1-5-pruned-emaonly"]
    assert set(models[0]) == {"title", "model_name", "hash", "sha256", "filename", "config"}
    assert models[1]["title"] == f"{SD15} [{models[1]['hash']}]"
    options = (await c.get("/sdapi/v1/options")).json()
    assert options["sd_model_checkpoint"] == models[0]["title"]
    unknown = await c.post("/sdapi/v1/options", json={"sd_model_checkpoint": "nope"})
    assert unknown.status_code == 500
    assert unknown.json() == {
        "error": "RuntimeError",
        "detail": "",
        "body": "",
        "errors": "model 'nope' not found",
    }
    garbled = await c.post("/sdapi/v1/options", content=b"[1,", headers=JSON)
    assert garbled.status_code == 422 and garbled.json()["detail"][0]["loc"] == ["body", 3]
    switched = await c.post("/sdapi/v1/options", json={"sd_model_checkpoint": SD15})
    assert switched.status_code == 200 and switched.json() is None
    assert (await c.get("/sdapi/v1/options")).json()["sd_model_checkpoint"] == models[1]["title"]
    ran = await c.post(
        "/sdapi/v1/txt2img", json=txt(override_settings={"sd_model_checkpoint": SDXL})
    )
    assert json.loads(ran.json()["info"])["sd_model_name"] == "sd_xl_base_1.0"
    # an unknown checkpoint is no error: A1111 falls back to the first one
    fallback = await c.post(
        "/sdapi/v1/txt2img", json=txt(override_settings={"sd_model_checkpoint": "gone"})
    )
    assert fallback.status_code == 200
    assert json.loads(fallback.json()["info"])["sd_model_hash"] == models[0]["hash"]
    assert (await c.get("/_stats")).json()["creates"] == {models[0]["title"]: 2}
    samplers = (await c.get("/sdapi/v1/samplers")).json()
    assert {"name": "Euler", "aliases": [], "options": {}} in samplers
