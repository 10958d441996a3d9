"""The ComfyUI fake over real sockets (httpx + websockets): prompts, the WebSocket sequence with
binary previews, history, node_errors, execution_error, interrupt, the queue, crashes."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from pixelpipe.fakes.comfyui import ComfyBehaviour, FakeComfyUI
from pixelpipe.fakes.server import build_fakes_app, serve_app
from tests.servers.comfy_graphs import flux, sdxl


@pytest.fixture
async def comfy() -> AsyncIterator[tuple[FakeComfyUI, httpx.AsyncClient, str]]:
    fake = FakeComfyUI(behaviour=ComfyBehaviour(step_s=0.01, crash_restart_s=0.5))
    async with serve_app(fake.app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield fake, client, url


class Socket:
    """A ComfyUI WebSocket client that keeps every message (text as dicts, binary as bytes)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any] | bytes] = []

    async def until(self, kind: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        async def loop() -> dict[str, Any]:
            while True:
                raw = await self.ws.recv()
                msg: dict[str, Any] | bytes = raw if isinstance(raw, bytes) else json.loads(raw)
                self.messages.append(msg)
                if (
                    isinstance(msg, dict)
                    and msg["type"] == kind
                    and all(msg["data"].get(k) == v for k, v in match.items())
                ):
                    return msg

        return await asyncio.wait_for(loop(), timeout)

    def types(self) -> list[str]:
        return ["<binary>" if isinstance(m, bytes) else m["type"] for m in self.messages]


async def socket(url: str, client_id: str, path: str = "/ws") -> Socket:
    ws = await connect(url.replace("http://", "ws://") + f"{path}?clientId={client_id}")
    return Socket(ws)


async def queue_prompt(c: httpx.AsyncClient, prompt: dict[str, Any], **body: Any) -> dict[str, Any]:
    resp = await c.post("/prompt", json={"prompt": prompt, **body})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def history(c: httpx.AsyncClient, prompt_id: str, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            body = (await c.get(f"/history/{prompt_id}")).json()
            if body:
                return dict(body[prompt_id])
            await asyncio.sleep(0.02)


async def test_a_prompt_runs_with_comfyuis_message_sequence_and_binary_previews(comfy: Any) -> None:
    _, c, url = comfy
    sock = await socket(url, "client-a")
    hello = await sock.until("status")
    assert hello["data"] == {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "client-a"}
    pid = str(uuid.uuid4())
    answer = await queue_prompt(c, sdxl(steps=3), client_id="client-a", prompt_id=pid)
    assert answer == {"prompt_id": pid, "number": 0, "node_errors": {}}
    await sock.until("executing", node=None, prompt_id=pid)
    await sock.ws.close()
    texts = [
        m
        for m in sock.messages
        if isinstance(m, dict) and m["type"] not in ("status", "progress_state")
    ]
    kinds = [m["type"] for m in texts]
    assert kinds[:2] == ["execution_start", "execution_cached"]
    assert kinds[-3:] == ["executed", "execution_success", "executing"]
    executing = [m["data"]["node"] for m in texts if m["type"] == "executing"]
    assert executing == ["4", "6", "7", "5", "3", "8", "9", None]  # each after its inputs
    progress = [m["data"] for m in texts if m["type"] == "progress"]
    assert progress == [{"value": i, "max": 3, "prompt_id": pid, "node": "3"} for i in (1, 2, 3)]
    frames = [m for m in sock.messages if isinstance(m, bytes)]
    assert len(frames) == 3
    event, image_type = struct.unpack(">II", frames[0][:8])
    assert (event, image_type) == (1, 1)  # PREVIEW_IMAGE, JPEG
    assert Image.open(io.BytesIO(frames[0][8:])).format == "JPEG"
    executed = texts[-3]["data"]
    image = executed["output"]["images"][0]
    assert executed["node"] == "9" and image["type"] == "output" and image["subfolder"] == ""
    assert image["filename"].startswith("px_") and image["filename"].endswith("_.png")
    assert texts[-2]["data"]["prompt_id"] == pid and "timestamp" in texts[-2]["data"]


async def test_history_is_empty_until_done_then_outputs_and_status(comfy: Any) -> None:
    fake, c, _ = comfy
    fake.knobs.step_s = 0.1
    pid = (await queue_prompt(c, sdxl(steps=3)))["prompt_id"]
    assert (await c.get(f"/history/{pid}")).json() == {}
    entry = await history(c, pid)
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    events = [m[0] for m in entry["status"]["messages"]]
    assert events == ["execution_start", "execution_cached", "execution_success"]
    assert entry["prompt"][1] == pid and len(entry["prompt"]) == 5
    image = entry["outputs"]["9"]["images"][0]
    view = await c.get("/view", params=image)
    assert view.status_code == 200 and view.headers["content-type"] == "image/png"
    png = Image.open(io.BytesIO(view.content))
    assert png.size == (64, 48) and json.loads(png.info["prompt"])["6"]["inputs"]["text"] == (
        "a red fox"
    )
    assert pid in (await c.get("/api/history")).json()


async def test_the_image_is_deterministic_from_the_prompt_and_seed(comfy: Any) -> None:
    _, c, _ = comfy

    async def image_of(prompt: dict[str, Any]) -> bytes:
        entry = await history(c, (await queue_prompt(c, prompt))["prompt_id"])
        image = next(iter(entry["outputs"].values()))["images"][0]
        return (await c.get("/view", params=image)).content

    first = await image_of(sdxl("a cat", seed=1))
    assert await image_of(sdxl("a dog", seed=1)) != first
    again = await image_of(sdxl("a cat", seed=1, steps=4))  # not all cached: runs again
    assert Image.open(io.BytesIO(again)).tobytes() == Image.open(io.BytesIO(first)).tobytes()
    assert (await image_of(flux())) != first


async def test_an_identical_prompt_is_served_from_the_cache(comfy: Any) -> None:
    _, c, url = comfy
    first = await history(c, (await queue_prompt(c, sdxl("owl")))["prompt_id"])
    sock = await socket(url, "cache")
    pid = (await queue_prompt(c, sdxl("owl"), client_id="cache"))["prompt_id"]
    cached = await sock.until("execution_cached", prompt_id=pid)
    assert sorted(cached["data"]["nodes"]) == sorted(sdxl())
    executed = await sock.until("executed", prompt_id=pid)
    assert executed["data"]["output"] == first["outputs"]["9"]
    assert "progress" not in sock.types()
    await sock.ws.close()


async def test_a_client_given_prompt_id_and_front_and_the_api_prefix(comfy: Any) -> None:
    fake, c, _ = comfy
    fake.knobs.step_s = 0.2
    await queue_prompt(c, sdxl("running"))
    back = await queue_prompt(c, sdxl("back"), prompt_id="mine-1")
    front = (await c.post("/api/prompt", json={"prompt": sdxl("front"), "front": True})).json()
    assert back["prompt_id"] == "mine-1" and back["number"] == 1 and front["number"] == -2
    queue = (await c.get("/api/queue")).json()
    assert [item[1] for item in queue["queue_pending"]] == [front["prompt_id"], "mine-1"]
    assert (await c.get("/prompt")).json() == {"exec_info": {"queue_remaining": 3}}


async def test_invalid_graphs_answer_400_with_node_errors(comfy: Any) -> None:
    _, c, _ = comfy
    unknown = sdxl() | {"3": {"class_type": "NoSuchSampler", "inputs": {}}}
    resp = await c.post("/prompt", json={"prompt": unknown})
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "missing_node_type"
    assert resp.json()["node_errors"] == {}

    missing = sdxl()
    del missing["3"]["inputs"]["steps"]
    body = (await c.post("/prompt", json={"prompt": missing})).json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["3"]["class_type"] == "KSampler"
    assert body["node_errors"]["3"]["errors"][0]["type"] == "required_input_missing"
    assert body["node_errors"]["3"]["dependent_outputs"] == ["9"]

    dangling = sdxl()
    dangling["8"]["inputs"]["vae"] = ["99", 2]
    body = (await c.post("/prompt", json={"prompt": dangling})).json()
    # ComfyUI's inner validation raises KeyError('99'): reported under the output node
    error = body["node_errors"]["9"]["errors"][0]
    assert error["type"] == "exception_during_validation" and error["details"] == "'99'"

    bad_value = sdxl()
    bad_value["4"]["inputs"]["ckpt_name"] = "nope.safetensors"
    body = (await c.post("/prompt", json={"prompt": bad_value})).json()
    assert body["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"

    no_output = {k: v for k, v in sdxl().items() if k != "9"}
    body = (await c.post("/prompt", json={"prompt": no_output})).json()
    assert body["error"]["type"] == "prompt_no_outputs"
    assert (await c.post("/prompt", json={})).json()["error"]["type"] == "no_prompt"


async def test_a_failing_node_sends_execution_error_and_stores_it(comfy: Any) -> None:
    fake, c, url = comfy
    fake.behaviour.update({"fail_node": "VAEDecode", "fail_message": "CUDA out of memory"})
    sock = await socket(url, "err")
    pid = (await queue_prompt(c, sdxl(), client_id="err"))["prompt_id"]
    error = (await sock.until("execution_error", prompt_id=pid))["data"]
    assert error["node_id"] == "8" and error["node_type"] == "VAEDecode"
    assert error["exception_message"].startswith("CUDA out of memory")
    assert error["exception_type"] == "RuntimeError" and "3" in error["executed"]
    await sock.until("executing", node=None)
    entry = await history(c, pid)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["outputs"] == {}
    assert entry["status"]["messages"][-1][0] == "execution_error"
    await sock.ws.close()


async def test_interrupt_stops_the_running_prompt_only_when_it_is_the_one_named(comfy: Any) -> None:
    fake, c, url = comfy
    fake.knobs.step_s = 0.05
    sock = await socket(url, "int")
    pid = (await queue_prompt(c, sdxl(steps=50), client_id="int"))["prompt_id"]
    await sock.until("progress", prompt_id=pid)
    assert (await c.post("/interrupt", json={"prompt_id": "someone-else"})).status_code == 200
    await sock.until("progress", prompt_id=pid, value=3)
    await c.post("/interrupt", json={"prompt_id": pid})
    stopped = (await sock.until("execution_interrupted", prompt_id=pid))["data"]
    assert stopped["node_id"] == "3" and stopped["node_type"] == "KSampler"
    entry = await history(c, pid)
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    steps = [
        m["data"]["value"] for m in sock.messages if isinstance(m, dict) and m["type"] == "progress"
    ]
    assert max(steps) < 50
    await sock.ws.close()


async def test_queue_positions_deletion_clear_and_jobs_cancel(comfy: Any) -> None:
    fake, c, _ = comfy
    fake.knobs.step_s = 0.5
    ids = [(await queue_prompt(c, sdxl(f"p{i}")))["prompt_id"] for i in range(4)]
    await asyncio.sleep(0.1)
    queue = (await c.get("/queue")).json()
    assert [i[1] for i in queue["queue_running"]] == ids[:1]
    assert [i[1] for i in queue["queue_pending"]] == ids[1:]
    number, prompt_id, prompt, extra, outputs = queue["queue_pending"][0]
    assert (number, prompt_id, outputs) == (1, ids[1], ["9"]) and extra == {}
    assert prompt["6"]["inputs"]["text"] == "p1"
    assert (await c.post("/queue", json={"delete": [ids[2]]})).status_code == 200
    cancel = await c.post(f"/api/jobs/{ids[3]}/cancel")
    assert cancel.status_code == 200 and cancel.json()["cancelled"] is True
    assert [i[1] for i in (await c.get("/queue")).json()["queue_pending"]] == [ids[1]]
    await c.post("/queue", json={"clear": True})
    assert (await c.get("/queue")).json()["queue_pending"] == []
    assert (await c.post(f"/api/jobs/{ids[0]}/cancel")).json()["cancelled"] is True
    entry = await history(c, ids[0])
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert (await c.post("/api/jobs/unknown/cancel")).json()["cancelled"] is False


async def test_messages_go_only_to_the_client_that_queued_the_prompt(comfy: Any) -> None:
    _, c, url = comfy
    mine, other = await socket(url, "mine"), await socket(url, "other")
    pid = (await queue_prompt(c, sdxl(), client_id="mine"))["prompt_id"]
    await mine.until("execution_success", prompt_id=pid)
    await other.until("status")
    with pytest.raises(TimeoutError):
        await other.until("execution_start", timeout=0.3)
    assert set(other.types()) <= {"status"}
    await mine.ws.close()
    await other.ws.close()


async def test_a_client_declaring_preview_metadata_gets_type_4_frames(comfy: Any) -> None:
    _, c, url = comfy
    sock = await socket(url, "meta", path="/api/ws")
    await sock.ws.send(
        json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    )
    flags = await sock.until("feature_flags")
    assert flags["data"]["supports_preview_metadata"] is True
    pid = (await queue_prompt(c, flux(), client_id="meta"))["prompt_id"]
    await sock.until("execution_success", prompt_id=pid)
    frame = next(m for m in sock.messages if isinstance(m, bytes))
    event, length = struct.unpack(">II", frame[:8])
    meta = json.loads(frame[8 : 8 + length])
    assert event == 4 and meta["prompt_id"] == pid and meta["node_id"] == "11"
    assert meta["image_type"] == "image/jpeg"
    assert Image.open(io.BytesIO(frame[8 + length :])).format == "JPEG"
    states = [
        m["data"] for m in sock.messages if isinstance(m, dict) and m["type"] == "progress_state"
    ]
    assert states[-1]["nodes"]["13"]["state"] == "finished"
    await sock.ws.close()


async def test_a_crash_loses_the_queue_and_history_and_drops_the_sockets(comfy: Any) -> None:
    fake, c, url = comfy
    fake.behaviour.update({"crash_next": 1, "crash_at_step": 2, "step_s": 0.05})
    done = (await queue_prompt(c, sdxl("before", steps=1)))["prompt_id"]
    await history(c, done)
    fake.behaviour.update({"crash_next": 1})
    sock = await socket(url, "crash")
    pid = (await queue_prompt(c, sdxl(steps=10), client_id="crash"))["prompt_id"]
    await queue_prompt(c, sdxl("waiting"))
    await sock.until("progress", prompt_id=pid)
    with pytest.raises(Exception):  # the socket closes with the server  # noqa: B017
        await sock.until("execution_success", timeout=5)
    with pytest.raises(httpx.RemoteProtocolError):
        await c.get("/queue")
    await asyncio.sleep(0.6)
    assert (await c.get("/queue")).json() == {"queue_running": [], "queue_pending": []}
    assert (await c.get(f"/history/{pid}")).json() == {}
    assert (await c.get(f"/history/{done}")).json() == {}
    again = await queue_prompt(c, sdxl("after"))
    assert again["number"] == 0
    await history(c, again["prompt_id"])


async def test_upload_object_info_system_stats_and_the_mount(comfy: Any) -> None:
    _, c, _ = comfy
    files = {"image": ("in.png", b"\x89PNG-fake", "image/png")}
    first = (await c.post("/upload/image", files=files, data={"type": "input"})).json()
    assert first == {"name": "in.png", "subfolder": "", "type": "input"}
    other = {"image": ("in.png", b"\x89PNG-other", "image/png")}
    assert (await c.post("/upload/image", files=other)).json()["name"] == "in (1).png"
    view = await c.get("/view", params={"filename": "in.png", "type": "input"})
    assert view.content == b"\x89PNG-fake"
    assert (await c.get("/view", params={"filename": "../etc/passwd"})).status_code == 400
    info = (await c.get("/object_info")).json()
    assert {"KSampler", "SaveImage", "SamplerCustomAdvanced", "FluxGuidance"} <= set(info)
    assert info["SaveImage"]["output_node"] is True
    assert info["KSampler"]["input"]["required"]["sampler_name"][0][0] == "euler"
    assert list((await c.get("/object_info/VAEDecode")).json()) == ["VAEDecode"]
    stats = (await c.get("/system_stats")).json()
    assert stats["devices"][0]["type"] == "cuda" and "comfyui_version" in stats["system"]
    async with serve_app(build_fakes_app(latency_s=0.01)) as base, httpx.AsyncClient() as h:
        assert "comfyui" in (await h.get(base + "/")).json()["fakes"]
        assert (await h.get(base + "/comfyui/queue")).json() == {
            "queue_running": [],
            "queue_pending": [],
        }
