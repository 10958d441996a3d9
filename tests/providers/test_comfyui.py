"""The comfyui backend kind against the fake ComfyUI, over real sockets (HTTP and WebSocket):
submit with our own prompt id, poll /history and /queue, previews from the socket, node errors,
execution errors, cancel, a restart's look-up, a ComfyUI restart that lost the queue, health."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelpipe.errors import (
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderUnavailable,
)
from pixelpipe.fakes.comfyui import ComfyBehaviour, FakeComfyUI
from pixelpipe.fakes.server import faked, serve_app
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import (
    FindsLostRuns,
    HealthState,
    NamesItsRuns,
    ProviderRequest,
    ProviderUpdate,
    RunState,
)
from pixelpipe.providers.comfyui import REGISTRATION
from pixelpipe.providers.comfyui.client import ComfyUIProvider
from pixelpipe.providers.comfyui.live import LiveFeed
from pixelpipe.providers.previews import PREVIEW_MAX_BYTES
from pixelpipe.providers.registration import Backend
from pixelpipe.workflows import Workflow, load_workflow
from tests.servers.comfy_graphs import sdxl

from .asgi_recorder import Recorder

SECRET = b"k" * 32
MAPPING = {
    "prompt": ["6.text"],
    "seed": ["3.seed"],
    "steps": ["3.steps"],
    "width": ["5.width"],
    "height": ["5.height"],
}


@dataclass
class Server:
    fake: FakeComfyUI
    seen: Recorder
    url: str
    workflow: Workflow

    def provider(self, **kw: Any) -> ComfyUIProvider:
        backend = Backend(name="comfy_a", kind="comfyui", url=self.url, source="catalog.toml:3")
        return ComfyUIProvider(backend, secret=SECRET, **kw)

    def control(self, **knobs: Any) -> None:
        self.fake.knobs.update(knobs)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(sdxl(), indent=2))
    workflow = load_workflow(path, MAPPING)
    fake = FakeComfyUI(behaviour=ComfyBehaviour(step_s=0.01, crash_restart_s=0.3))
    seen = Recorder(fake.app)
    async with serve_app(seen) as url:
        yield Server(fake, seen, url, workflow)


def job(server: Server, job_id: str = "job_1", attempt: int = 1, **kw: Any) -> ProviderRequest:
    fields: dict[str, Any] = {"steps": 4} | kw
    req = CanonicalRequest("sdxl-comfy", "a red fox", 42, 64, 48, "png", **fields)
    return ProviderRequest(job_id, attempt, req, "sdxl-comfy", workflow=server.workflow)


async def until_ended(
    provider: ComfyUIProvider, req: ProviderRequest, pid: str, timeout_s: float = 10.0
) -> tuple[ProviderUpdate, list[ProviderUpdate]]:
    """Poll every 20 ms until the prompt ended; (the end, every update before it)."""
    seen: list[ProviderUpdate] = []
    async with asyncio.timeout(timeout_s):
        while not (update := await provider.poll(pid, req)).state.terminal:
            seen.append(update)
            await asyncio.sleep(0.02)
    return update, seen


async def until_running(provider: ComfyUIProvider, req: ProviderRequest, pid: str) -> None:
    async with asyncio.timeout(10):
        while (await provider.poll(pid, req)).state is not RunState.RUNNING:
            await asyncio.sleep(0.01)


def test_registration_runs_workflows_and_serves_the_fake() -> None:
    assert REGISTRATION.runs_workflows and REGISTRATION.backend is not None
    assert faked()["comfyui"].factory == "pixelpipe.fakes.comfyui:FakeComfyUI"


async def test_generates_with_our_prompt_id_and_bills_the_server_time(server: Server) -> None:
    provider = server.provider()
    req = job(server)
    assert isinstance(provider, FindsLostRuns) and isinstance(provider, NamesItsRuns)
    try:
        submitted = await provider.submit(req)
        pid = submitted.provider_job_id
        assert pid == provider.run_id(req) == str(uuid.UUID(pid))  # a UUID, ours, stable
        assert submitted.state is RunState.PENDING
        done, _ = await until_ended(provider, req, pid)
    finally:
        await provider.aclose()
    assert done.state is RunState.SUCCEEDED and done.error is None
    (out,) = done.outputs
    assert out.content_type == "image/png" and out.data is not None
    assert Image.open(io.BytesIO(out.data)).size == (64, 48)
    assert done.gpu_time_source == "server" and done.gpu_seconds is not None
    assert 4 * 0.01 <= done.gpu_seconds < 5
    (sent,) = server.seen.sent("/prompt")
    body = sent.json()
    assert body["prompt_id"] == pid and body["client_id"] == provider.live.client_id
    assert body["prompt"]["3"]["inputs"]["seed"] == 42
    assert body["prompt"]["6"]["inputs"]["text"] == "a red fox"
    # another attempt of the same job is another prompt; another secret too
    assert provider.run_id(job(server, attempt=2)) != pid
    other = ComfyUIProvider(Backend("comfy_a", "comfyui", server.url), secret=b"x" * 32)
    assert other.run_id(req) != pid


async def test_progress_and_previews_come_from_the_socket(server: Server) -> None:
    server.control(step_s=0.05)
    provider = server.provider()
    req = job(server, steps=12)
    try:
        pid = (await provider.submit(req)).provider_job_id
        done, seen = await until_ended(provider, req, pid)
    finally:
        await provider.aclose()
    assert done.state is RunState.SUCCEEDED
    running = [u.progress for u in seen if u.state is RunState.RUNNING and "step" in u.progress]
    assert len(running) >= 3, seen
    assert {p["steps"] for p in running} == {12}
    steps = [p["step"] for p in running]
    assert steps == sorted(steps) and steps[0] < steps[-1]
    assert all(p["percent"] == round(100 * p["step"] / 12, 1) for p in running)
    previews = [p["preview"] for p in running if "preview" in p]
    assert previews and all(p.startswith("data:image/jpeg;base64,") for p in previews)
    assert len(set(previews)) == len(previews)  # each frame reported once
    assert all(u.poll_after_s is not None and u.poll_after_s <= 1.0 for u in seen)


async def test_queue_position_while_another_prompt_runs(server: Server) -> None:
    server.control(step_s=0.05)
    provider = server.provider()
    first, second = job(server, "job_1"), job(server, "job_2")
    try:
        a = (await provider.submit(first)).provider_job_id
        b = (await provider.submit(second)).provider_job_id
        waiting = await provider.poll(b, second)
        assert waiting.state is RunState.PENDING
        assert waiting.progress == {"state": "queued", "queue_position": 1}
        for req, pid in ((first, a), (second, b)):
            done, _ = await until_ended(provider, req, pid)
            assert done.state is RunState.SUCCEEDED
    finally:
        await provider.aclose()


async def test_a_node_error_names_the_node_and_is_not_retried(
    server: Server, tmp_path: Path
) -> None:
    graph = sdxl()
    graph["4"]["inputs"]["ckpt_name"] = "missing.safetensors"
    graph["4"]["_meta"] = {"title": "Load Checkpoint"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(graph))
    bad = ProviderRequest(
        "job_1", 1, job(server).request, "m", workflow=load_workflow(path, MAPPING)
    )
    provider = server.provider()
    try:
        with pytest.raises(ProviderInvalidInput) as caught:
            await provider.submit(bad)
    finally:
        await provider.aclose()
    message = str(caught.value)
    assert "node 4 (Load Checkpoint, CheckpointLoaderSimple)" in message, message
    assert "Value not in list: ckpt_name: 'missing.safetensors'" in message, message
    assert not caught.value.retryable


async def test_an_execution_error_fails_the_run_naming_the_node(server: Server) -> None:
    server.control(fail_node="KSampler", fail_message="CUDA error: device-side assert")
    provider = server.provider()
    req = job(server)
    try:
        pid = (await provider.submit(req)).provider_job_id
        done, _ = await until_ended(provider, req, pid)
    finally:
        await provider.aclose()
    assert done.state is RunState.FAILED and isinstance(done.error, ProviderFailed)
    assert "node 3 (KSampler) failed: RuntimeError: CUDA error" in str(done.error), done.error
    assert done.gpu_time_source == "server"


async def test_cancel_interrupts_our_running_prompt_or_dequeues_it(server: Server) -> None:
    server.control(step_s=0.05)
    provider = server.provider()
    first, second = job(server, "job_1", steps=40), job(server, "job_2")
    try:
        a = (await provider.submit(first)).provider_job_id
        b = (await provider.submit(second)).provider_job_id
        await until_running(provider, first, a)
        await provider.cancel(b, second)  # pending: taken out of the queue
        await provider.cancel(b, second)  # again: nothing to do
        assert server.fake.queue.current()[1] == []
        await provider.cancel(a, first)  # running: interrupted
        done, _ = await until_ended(provider, first, a)
        assert done.state is RunState.CANCELED
        await provider.cancel(a, first)  # ended: nothing to do
    finally:
        await provider.aclose()
    interrupts = server.seen.sent("/interrupt")
    assert [s.json() for s in interrupts] == [{"prompt_id": a}]
    deletes = [s.json() for s in server.seen.sent("/queue") if s.method == "POST"]
    assert deletes == [{"delete": [b]}]
    assert server.fake.core.stats.creates["SaveImage"] == 0


async def test_a_restarted_process_finds_its_prompt_instead_of_queueing_it(
    server: Server,
) -> None:
    server.control(step_s=0.03)
    before, after = server.provider(), server.provider()  # the process, then its restart
    req = job(server, steps=10)
    try:
        assert await after.find_run(req, 0.0) is None  # never queued: submit it
        pid = (await before.submit(req)).provider_job_id
        found = await after.find_run(req, 0.0)
        assert found is not None and found.provider_job_id == pid
        assert found.state in (RunState.PENDING, RunState.RUNNING)
        done, _ = await until_ended(after, req, pid)
        assert done.state is RunState.SUCCEEDED and done.outputs
        ended = await after.find_run(req, 0.0)  # from the history, once ended
        assert ended is not None and ended.state is RunState.SUCCEEDED
    finally:
        await before.aclose()
        await after.aclose()
    assert server.fake.core.stats.calls["prompt"] == 1


class AnswerLost(httpx.AsyncBaseTransport):
    """Sends each ``POST /prompt`` for real, then drops its answer (as a dropped connection)."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        resp = await self.real.handle_async_request(request)
        if request.method == "POST" and request.url.path == "/prompt":
            await resp.aread()
            raise httpx.ReadError("connection reset after sending", request=request)
        return resp

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_a_submit_whose_answer_was_lost_adopts_the_queued_prompt(server: Server) -> None:
    provider = server.provider(client=httpx.AsyncClient(transport=AnswerLost()))
    req = job(server)
    try:
        submitted = await provider.submit(req)  # no error: the prompt was queued, it is ours
        assert submitted.provider_job_id == provider.run_id(req)
        done, _ = await until_ended(provider, req, submitted.provider_job_id)
    finally:
        await provider.aclose()
    assert done.state is RunState.SUCCEEDED
    assert server.fake.core.stats.calls["prompt"] == 1


async def test_a_lost_answer_that_cannot_be_looked_up_stays_ambiguous(server: Server) -> None:
    provider = server.provider()
    req = job(server)
    server.control(crash_restart_s=2.0)
    async with httpx.AsyncClient() as http:  # down: the look-up cannot answer either
        (await http.post(f"{server.url}/_control", json={"crash": True})).raise_for_status()
    await asyncio.sleep(0.1)
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await provider.submit(req)  # the connection dropped unanswered, and stays down
    finally:
        await provider.aclose()
    assert caught.value.extra.get("ambiguous")  # the worker goes round again, and says so


async def test_a_comfyui_restart_mid_run_loses_the_prompt(server: Server) -> None:
    server.control(step_s=0.05, crash_next=1, crash_at_step=2)
    provider = server.provider(lost_grace_s=0.3)
    req = job(server, steps=10)
    outcomes: list[str] = []

    async def poll_until_lost(pid: str) -> None:
        async with asyncio.timeout(10):
            while True:
                try:
                    await provider.poll(pid, req)
                except ProviderUnavailable:
                    outcomes.append("down")  # while it restarts: asked again later
                await asyncio.sleep(0.05)

    try:
        pid = (await provider.submit(req)).provider_job_id
        with pytest.raises(ProviderJobLost) as caught:
            await poll_until_lost(pid)
    finally:
        await provider.aclose()
    assert "down" in outcomes
    assert "neither in its queue nor in its history" in str(caught.value)
    assert caught.value.extra["transient"]  # retried with a new attempt while attempts last


async def test_without_the_socket_polling_still_ends_the_run(server: Server) -> None:
    provider = server.provider()
    provider.live.url = "ws://127.0.0.1:9/ws"  # nothing listens there
    req = job(server)
    try:
        pid = (await provider.submit(req)).provider_job_id
        done, seen = await until_ended(provider, req, pid)
    finally:
        await provider.aclose()
    assert done.state is RunState.SUCCEEDED and done.outputs
    assert all("step" not in u.progress for u in seen)


async def test_the_socket_reconnects_after_comfyui_restarts(server: Server) -> None:
    server.control(step_s=0.05)
    provider = server.provider()

    async def until(connected: bool) -> None:
        async with asyncio.timeout(10):
            while provider.live.connected is not connected:
                await asyncio.sleep(0.02)

    try:
        provider.live.start()
        await until(True)
        async with httpx.AsyncClient() as http:
            (await http.post(f"{server.url}/_control", json={"crash": True})).raise_for_status()
        await until(False)
        await until(True)  # back after crash_restart_s, by itself
        req = job(server, steps=6)  # and live again: the figures reach poll
        pid = (await provider.submit(req)).provider_job_id
        done, seen = await until_ended(provider, req, pid)
    finally:
        await provider.aclose()
    assert done.state is RunState.SUCCEEDED
    assert any("step" in u.progress for u in seen), seen


async def test_health_ready_busy_down(server: Server) -> None:
    server.control(step_s=0.05)
    provider = server.provider()
    req = job(server, steps=20)
    try:
        assert (await provider.backend_health()).state is HealthState.READY
        pid = (await provider.submit(req)).provider_job_id
        await until_running(provider, req, pid)
        busy = await provider.backend_health()
        assert busy.state is HealthState.BUSY and busy.busy_slots == 1
        await provider.cancel(pid, req)
    finally:
        await provider.aclose()
    gone = ComfyUIProvider(Backend("comfy_b", "comfyui", "http://127.0.0.1:9"), secret=SECRET)
    try:
        assert (await gone.backend_health()).state is HealthState.DOWN
    finally:
        await gone.aclose()


def test_a_large_preview_is_left_out_and_type_1_frames_go_to_the_running_prompt() -> None:
    feed = LiveFeed("http://127.0.0.1:1")
    feed.take(json.dumps({"type": "progress", "data": {"prompt_id": "p", "value": 1, "max": 4}}))
    small = b"\xff\xd8" + b"x" * 100
    feed.take((1).to_bytes(4, "big") + (1).to_bytes(4, "big") + small)
    first = feed.report("p")
    assert first["percent"] == 25.0 and first["preview"].startswith("data:image/jpeg;base64,")
    assert feed.report("p") == first  # unchanged: the same report
    big = b"\x89PNG" + b"x" * PREVIEW_MAX_BYTES
    feed.take((1).to_bytes(4, "big") + (2).to_bytes(4, "big") + big)
    assert "preview" not in feed.report("p")
    assert feed.report("other") == {}
