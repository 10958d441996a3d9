"""The Comfy API v2 backend against the REAL comfy-api-proxy 0.1.6 in front of the fake ComfyUI
(session fixture ``comfy``, tests/servers/comfy_proxy.py): submit, live progress with previews,
the idempotent resend, node errors, cancel, a ComfyUI restart, health. Then its translation on
hand-written job objects (Comfy Cloud's fields, which the proxy does not send)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelpipe.errors import (
    ConfigError,
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderUnavailable,
    Unauthorized,
)
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import HealthState, ProviderRequest, ProviderUpdate, RunState
from pixelpipe.providers.comfy_api import REGISTRATION
from pixelpipe.providers.comfy_api.client import ComfyApiProvider
from pixelpipe.providers.comfy_api.events import (
    PREVIEW_MAX_BYTES,
    SseEvent,
    Watch,
    preview_url,
    sse_events,
)
from pixelpipe.providers.comfy_api.jobs import invalid_workflow, job_update, run_key
from pixelpipe.providers.registration import Backend, BuildContext
from pixelpipe.providers.run_tag import RunRef
from pixelpipe.settings import load_settings
from pixelpipe.workflows import Workflow, load_workflow
from tests.servers.comfy_graphs import sdxl
from tests.servers.comfy_proxy import ComfyStack

SETTINGS = load_settings(secret_key="comfy-api-test-secret-0123456789abcdef")
NAME = "comfy_v2"
MAPPING = {
    "prompt": ["6.text"],
    "seed": ["3.seed"],
    "steps": ["3.steps"],
    "guidance": ["3.cfg"],
    "width": ["5.width"],
    "height": ["5.height"],
}
servers = pytest.mark.servers


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Workflow:
    graph = sdxl()
    graph["3"]["_meta"] = {"title": "Sampler"}
    path = tmp_path_factory.mktemp("wf") / "sdxl.json"
    path.write_text(json.dumps(graph, indent=2))
    return load_workflow(path, MAPPING)


def request(
    workflow: Workflow, prompt: str = "a fox", steps: int = 3, **kw: Any
) -> ProviderRequest:
    canonical = CanonicalRequest(
        model="sdxl-comfy",
        prompt=prompt,
        seed=7,
        width=64,
        height=48,
        format="png",
        steps=steps,
        guidance=7.0,
    )
    job_id = kw.pop("job_id", f"job_{uuid.uuid4().hex[:10]}")
    return ProviderRequest(job_id, kw.pop("attempt", 1), canonical, "sdxl-comfy", workflow=workflow)


def provider(url: str) -> ComfyApiProvider:
    built = REGISTRATION.backend(Backend(NAME, "comfy_api", url), BuildContext(SETTINGS))  # type: ignore[misc]
    assert isinstance(built, ComfyApiProvider)
    return built


@pytest.fixture
async def v2(comfy: ComfyStack) -> AsyncIterator[ComfyApiProvider]:
    p = provider(comfy.proxy.url)
    try:
        yield p
    finally:
        await p.aclose()


async def run_to_end(
    p: ComfyApiProvider, req: ProviderRequest, every_s: float = 0.1, timeout_s: float = 20
) -> tuple[ProviderUpdate, list[dict[str, Any]]]:
    """Poll like the worker until terminal; the progress dicts seen, in order, without repeats."""
    update = await p.submit(req)
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while not update.state.terminal:
        assert time.monotonic() < deadline, update
        await asyncio.sleep(every_s)
        update = await p.poll(update.provider_job_id, req)
        if update.progress and (not seen or seen[-1] != update.progress):
            seen.append(update.progress)
    return update, seen


# ---- against the real proxy --------------------------------------------------------------------
@servers
async def test_a_workflow_runs_with_live_progress_and_previews_then_the_image(
    comfy: ComfyStack, v2: ComfyApiProvider, workflow: Workflow
) -> None:
    comfy.comfyui.control(step_s=0.2)
    req = request(workflow, "a v2 fox", steps=8)
    done, seen = await run_to_end(v2, req)
    assert done.state is RunState.SUCCEEDED and done.error is None
    [output] = done.outputs
    assert output.url and output.url.startswith(comfy.proxy.url + "/api/v2/assets/")
    png = httpx.get(output.url, timeout=10).content
    assert Image.open(io.BytesIO(png)).size == (64, 48)
    assert done.gpu_seconds is None  # the proxy reports no execution_ms: the worker bills wall
    # the rendered graph reached ComfyUI: the request's prompt and steps
    entry = httpx.get(f"{comfy.comfyui.url}/history/{done.provider_job_id}").json()
    graph = entry[done.provider_job_id]["prompt"][2]
    assert graph["6"]["inputs"]["text"] == "a v2 fox" and graph["3"]["inputs"]["steps"] == 8
    running = [p for p in seen if p.get("state") == "running"]
    assert any(p.get("steps") == 8 and p.get("step") for p in running), seen
    assert [p["percent"] for p in running] == sorted(p["percent"] for p in running)
    previews = [p["preview"] for p in running if "preview" in p]
    assert previews, seen
    head, data = previews[0].split(",", 1)
    assert head == "data:image/jpeg;base64"
    image = base64.b64decode(data)
    assert len(image) <= PREVIEW_MAX_BYTES and Image.open(io.BytesIO(image)).format == "JPEG"
    assert len(previews) == len(set(previews))  # each preview handed out once
    assert v2._watches._watches == {}  # the stream of an ended job is closed


@servers
async def test_a_resent_submit_finds_the_job_it_made(
    comfy: ComfyStack, v2: ComfyApiProvider, workflow: Workflow
) -> None:
    comfy.comfyui.control(step_s=0.2)
    req = request(workflow, steps=10)
    first = await v2.submit(req)
    again = await v2.submit(req)  # the same attempt: the same key (422 reuse), looked up
    found = await v2.find_run(req, since=0.0)
    assert again.provider_job_id == first.provider_job_id == found.provider_job_id  # type: ignore[union-attr]
    jobs = httpx.get(f"{comfy.proxy.url}/api/v2/jobs?limit=100").json()["jobs"]
    assert [j["id"] for j in jobs if j.get("metadata") == v2.run_key(req)] == [
        first.provider_job_id
    ]
    # the next attempt is a new key: a new job
    retry = await v2.submit(request(workflow, job_id=req.job_id, attempt=2))
    assert retry.provider_job_id != first.provider_job_id
    for job_id in (first.provider_job_id, retry.provider_job_id):
        await v2.cancel(job_id, req)


@servers
async def test_a_node_error_names_the_node(
    comfy: ComfyStack, v2: ComfyApiProvider, workflow: Workflow
) -> None:
    graph = dict(workflow.graph)
    sampler = dict(graph["3"])
    sampler["inputs"] = {k: v for k, v in sampler["inputs"].items() if k != "steps"}
    graph["3"] = sampler
    broken = Workflow(
        workflow.source,
        graph,
        {"prompt": workflow.targets["prompt"]},
        frozenset(),
        workflow.output_node,
        "x",
    )
    req = request(broken)
    with pytest.raises(ProviderInvalidInput) as refused:
        await v2.submit(req)
    assert "node 3 (Sampler, KSampler)" in refused.value.detail
    assert "Prompt outputs failed validation" in refused.value.detail
    # the key was freed by the proxy: the fixed workflow may use it (not needed here)


@servers
async def test_a_failing_node_fails_the_run_naming_the_node(
    comfy: ComfyStack, v2: ComfyApiProvider, workflow: Workflow
) -> None:
    comfy.comfyui.control(fail_node="VAEDecode", fail_message="CUDA out of memory")
    done, _ = await run_to_end(v2, request(workflow))
    assert done.state is RunState.FAILED and isinstance(done.error, ProviderFailed)
    assert "node 8 (VAEDecode) failed: CUDA out of memory" in done.error.detail


@servers
async def test_cancel_mid_run_is_idempotent(
    comfy: ComfyStack, v2: ComfyApiProvider, workflow: Workflow
) -> None:
    comfy.comfyui.control(step_s=0.2)
    req = request(workflow, steps=50)
    update = await v2.submit(req)
    while update.state is not RunState.RUNNING:
        await asyncio.sleep(0.05)
        update = await v2.poll(update.provider_job_id, req)
    await v2.cancel(update.provider_job_id, req)
    await v2.cancel(update.provider_job_id, req)  # again: fine
    while not update.state.terminal:
        await asyncio.sleep(0.05)
        update = await v2.poll(update.provider_job_id, req)
    assert update.state is RunState.CANCELED
    await v2.cancel(str(uuid.uuid4()), req)  # unknown to the server: nothing to do


@servers
async def test_a_comfyui_restart_loses_the_job_and_it_runs_again(
    comfy: ComfyStack, v2: ComfyApiProvider, workflow: Workflow
) -> None:
    comfy.comfyui.control(step_s=0.2, crash_restart_s=0.5)
    req = request(workflow, steps=50)
    update = await v2.submit(req)
    while update.state is not RunState.RUNNING:
        await asyncio.sleep(0.05)
        update = await v2.poll(update.provider_job_id, req)
    comfy.comfyui.control(crash=True)
    lost = await _poll_until_lost(v2, update.provider_job_id, req)
    assert lost.extra.get("transient") is True  # the worker runs it again
    assert "expired" in lost.detail
    with pytest.raises(ProviderJobLost):  # a job the proxy never made
        await v2.poll(str(uuid.uuid4()), req)


async def _poll_until_lost(
    p: ComfyApiProvider, job_id: str, req: ProviderRequest
) -> ProviderJobLost:
    """Poll until the job is lost; ComfyUI down meanwhile is ProviderUnavailable (the worker
    polls again)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        try:
            await p.poll(job_id, req)
        except ProviderUnavailable:
            continue
        except ProviderJobLost as exc:
            return exc
    raise AssertionError("the job was never reported lost")


@servers
async def test_health(comfy: ComfyStack, v2: ComfyApiProvider) -> None:
    assert (await v2.backend_health()).state is HealthState.READY
    down = provider("http://127.0.0.1:9")
    try:
        health = await down.backend_health()
        assert health.state is HealthState.DOWN
    finally:
        await down.aclose()


@servers
async def test_no_stream_left_is_no_error_the_job_is_polled(
    comfy: ComfyStack, v2: ComfyApiProvider, workflow: Workflow
) -> None:
    """The proxy's 8 streams taken (429 too_many_streams): the run ends all the same, polled."""
    comfy.comfyui.control(step_s=0.25)  # 5 s: the 8 streams must open while it runs (load!)
    req = request(workflow, steps=20)
    update = await v2.submit(req)
    url = f"{comfy.proxy.url}/api/v2/jobs/{update.provider_job_id}/events"
    seen: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=30) as client, contextlib.AsyncExitStack() as streams:
        for _ in range(8):  # they last as long as the job
            opened = await streams.enter_async_context(client.stream("GET", url))
            assert opened.status_code == 200
        refused = await client.get(url)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
        while not update.state.terminal:
            await asyncio.sleep(0.1)
            update = await v2.poll(update.provider_job_id, req)
            seen.append(update.progress)
    assert update.state is RunState.SUCCEEDED
    assert all("preview" not in p and "step" not in p for p in seen), seen


# ---- translation -------------------------------------------------------------------------------
def _job(**fields: Any) -> dict[str, Any]:
    return {"id": "j1", "status": "queued", "outputs": [], "error": None} | fields


def test_cloud_jobs_give_server_gpu_time_and_their_hash(workflow: Workflow) -> None:
    outputs = [
        {"node_id": "7", "type": "image", "url": "https://x/other.png", "hash": None},
        {
            "node_id": "9",
            "type": "image",
            "url": "https://x/a.png",
            "hash": "blake3:ab",
            "content_type": "image/png",
        },
    ]
    metrics = {"queue_ms": 400, "execution_ms": 2350}
    update = job_update(NAME, _job(status="succeeded", outputs=outputs, metrics=metrics), workflow)
    assert update.state is RunState.SUCCEEDED
    assert [o.url for o in update.outputs] == ["https://x/a.png"]  # the output node's
    assert (update.gpu_seconds, update.gpu_time_source) == (2.35, "server")
    assert update.usage["output_hash"] == "blake3:ab"
    assert update.outputs[0].digest == "blake3:ab"  # the fetch checks the bytes against it
    failed = job_update(
        NAME, _job(status="failed", metrics=metrics, error={"message": "boom"}), None
    )
    assert failed.state is RunState.FAILED and failed.gpu_seconds == 2.35


def test_statuses_map(workflow: Workflow) -> None:
    queued = job_update(NAME, _job(queue_position=2), workflow)
    assert queued.state is RunState.PENDING and queued.progress["queue_position"] == 2
    running = job_update(NAME, _job(status="canceling"), workflow)
    assert running.state is RunState.RUNNING and running.poll_after_s == 0.5
    assert job_update(NAME, _job(status="canceled"), workflow).state is RunState.CANCELED
    empty = job_update(NAME, _job(status="succeeded"), workflow)
    assert empty.state is RunState.FAILED  # succeeded without an image
    with pytest.raises(ProviderJobLost):
        job_update(NAME, _job(status="expired"), workflow)


def test_node_errors_name_every_node(workflow: Workflow) -> None:
    err = {
        "code": "invalid_workflow",
        "message": "Prompt outputs failed validation",
        "details": {
            "node_errors": {
                "3": {
                    "errors": [
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": "steps",
                        }
                    ],
                    "class_type": "KSampler",
                }
            }
        },
    }
    error = invalid_workflow(NAME, err, workflow)
    assert isinstance(error, ProviderInvalidInput)
    assert error.detail == (
        "comfy_v2 refused the workflow: Prompt outputs failed validation: node 3 (Sampler, "
        "KSampler): Required input is missing (steps)"
    )


def test_the_key_is_the_attempts_run_tag() -> None:
    secret = SETTINGS.signing_key()
    key = run_key(NAME, RunRef("job_1", 1), secret)
    assert key.startswith("job_1.1.") and len(key) < 255
    assert key == run_key(NAME, RunRef("job_1", 1), secret)
    assert key != run_key(NAME, RunRef("job_1", 2), secret)


async def test_sse_events_and_the_watch() -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG")
    preview = base64.b64encode(jpeg.getvalue()).decode()
    text = (
        'event: status\ndata: {"status": "queued", "queue_position": 1}\n\n'
        'event: progress\ndata: {"value": 0.5, "step": 4, "steps": 8, "current_node": "3"}\n\n'
        f'event: preview\ndata: {{"node_id": "3", "content_type": "image/jpeg", '
        f'"data_base64": "{preview}"}}\n\n'
        "event: output\ndata: not json\n\n"
    )

    async def lines() -> AsyncIterator[str]:
        for line in text.split("\n"):
            yield line

    events = [e async for e in sse_events(lines())]
    assert [e.name for e in events] == ["status", "progress", "preview"]
    watch = Watch("j1")
    watch.apply(events[0])
    assert watch.progress() == {"state": "queued", "percent": 0, "queue_position": 1}
    for event in events[1:]:
        watch.apply(event)
    first = watch.progress()
    assert first == {
        "state": "running",
        "percent": 50.0,
        "step": 4,
        "steps": 8,
        "node": "3",
        "preview": f"data:image/jpeg;base64,{preview}",
    }
    assert watch.progress() is first  # nothing new: the same dict (no new event)
    watch.apply(SseEvent("progress", {"value": 0.625, "step": 5, "steps": 8}))
    assert "preview" not in (watch.progress() or {})  # a preview is handed out once


def test_a_large_preview_is_left_out() -> None:
    big = base64.b64encode(b"\xff" * (PREVIEW_MAX_BYTES + 1)).decode()
    assert preview_url({"data_base64": big}) is None
    assert preview_url({"data_base64": "not base64!"}) is None


async def test_the_kind_is_built_from_the_catalog_only() -> None:
    assert (
        REGISTRATION.runs_workflows and REGISTRATION.build_provider(BuildContext(SETTINGS)) is None
    )
    with pytest.raises(ConfigError, match="takes no options"):
        REGISTRATION.backend(  # type: ignore[misc]
            Backend(NAME, "comfy_api", "http://x", options={"input": {}}), BuildContext(SETTINGS)
        )
    p = provider("http://127.0.0.1:9")
    try:
        assert p.supports_webhooks is False
        with pytest.raises(Unauthorized):
            await p.parse_webhook({}, b"{}")
    finally:
        await p.aclose()


async def test_a_model_without_a_workflow_is_refused(tmp_path: Path) -> None:
    p = provider("http://127.0.0.1:9")
    req = request(None)  # type: ignore[arg-type]
    try:
        with pytest.raises(ProviderInvalidInput, match="has none"):
            await p.submit(req)
    finally:
        await p.aclose()
