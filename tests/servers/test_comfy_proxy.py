"""The real comfy-api-proxy (Comfy API v2) in front of the fake ComfyUI: what a v2 client sees.

These document comfy-api-proxy 0.1.6's behaviour for the Comfy API v2 backend (facts summed up in
tests/servers/comfy_proxy.py); one proxy and one fake serve the whole session."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import blake3
import httpx
import pytest
from PIL import Image

from tests.servers.comfy_graphs import sdxl
from tests.servers.comfy_proxy import ComfyStack

pytestmark = pytest.mark.servers
TERMINAL = {"succeeded", "failed", "canceled", "expired"}


def submit(comfy: ComfyStack, workflow: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return httpx.post(
        f"{comfy.proxy.url}/api/v2/jobs", json={"workflow": workflow}, headers=headers, timeout=10
    )


def job(comfy: ComfyStack, job_id: str) -> dict[str, Any]:
    resp = httpx.get(f"{comfy.proxy.url}/api/v2/jobs/{job_id}", timeout=10)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def wait_for(
    comfy: ComfyStack, job_id: str, statuses: set[str], timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = job(comfy, job_id)
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"job still {body['status']}"
        time.sleep(0.05)


def events(comfy: ComfyStack, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The SSE stream of a job as (event, data) pairs, until the proxy ends it."""
    url = f"{comfy.proxy.url}/api/v2/jobs/{job_id}/events"
    with httpx.stream("GET", url, timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                yield event, json.loads(line[6:])


def test_a_job_succeeds_with_an_output_url_serving_comfyuis_png(comfy: ComfyStack) -> None:
    created = submit(comfy, sdxl("a proxy fox"), key=f"k-{uuid.uuid4()}")
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "queued" and body["outputs"] == [] and body["error"] is None
    assert set(body["urls"]) == {"self", "events", "cancel"}
    done = wait_for(comfy, body["id"], TERMINAL)
    assert done["status"] == "succeeded" and done["error"] is None
    assert "metrics" not in done  # 0.1.6 reports no execution_ms: bill from your own clock
    assert done["started_at"] is None and done["completed_at"] is None
    [output] = done["outputs"]
    assert output["node_id"] == "9" and output["type"] == "image"
    assert output["content_type"] == "image/png" and output["job_id"] == body["id"]
    assert output["hash"] is None and output["size_bytes"] == 0  # no blake3 of outputs
    content = httpx.get(output["url"], timeout=10)
    assert content.status_code == 200 and content.headers["content-type"] == "image/png"
    # the job id is ComfyUI's prompt_id and client_id; the bytes are ComfyUI's own
    entry = httpx.get(f"{comfy.comfyui.url}/history/{body['id']}", timeout=5).json()[body["id"]]
    assert entry["prompt"][3] == {"client_id": body["id"]}
    image = entry["outputs"]["9"]["images"][0]
    assert output["name"] == image["filename"]
    view = httpx.get(f"{comfy.comfyui.url}/view", params=image, timeout=5).content
    assert blake3.blake3(content.content).hexdigest() == blake3.blake3(view).hexdigest()
    assert Image.open(io.BytesIO(content.content)).size == (64, 48)


def test_events_stream_progress_and_previews_then_the_output(comfy: ComfyStack) -> None:
    comfy.comfyui.control(step_s=0.25)  # 2 s of sampling: the stream connects well before
    job_id = submit(comfy, sdxl("streamed", steps=8)).json()["id"]
    seen = list(events(comfy, job_id))
    kinds = [k for k, _ in seen]
    assert kinds[0] == "status" and seen[-1] == ("status", {"status": "succeeded"})
    assert "progress" in kinds and "preview" in kinds
    assert kinds.index("preview") < kinds.index("output")
    steps = [d for k, d in seen if k == "progress" and "step" in d]
    assert steps and steps[-1]["steps"] == 8 and steps[-1]["current_node"] == "3"
    assert all(0.0 <= d["value"] <= 1.0 for k, d in seen if k == "progress")
    preview = next(d for k, d in seen if k == "preview")
    assert preview["node_id"] == "3" and preview["content_type"] == "image/jpeg"
    assert Image.open(io.BytesIO(base64.b64decode(preview["data_base64"]))).format == "JPEG"
    output = next(d for k, d in seen if k == "output")
    assert output["id"] == job(comfy, job_id)["outputs"][0]["id"]
    # a stream opened after the end: the status and the outputs at once
    late = list(events(comfy, job_id))
    assert [k for k, _ in late] == ["status", "output"]


def test_idempotency_keys_are_single_use_and_freed_when_comfyui_refuses(comfy: ComfyStack) -> None:
    key = f"k-{uuid.uuid4()}"
    assert submit(comfy, sdxl("once"), key=key).status_code == 201
    again = submit(comfy, sdxl("once"), key=key)
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "idempotency_key_reuse"
    assert "idempotency-replayed" not in again.headers

    refused_key = f"k-{uuid.uuid4()}"
    bad = sdxl()
    del bad["3"]["inputs"]["steps"]
    refused = submit(comfy, bad, key=refused_key)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_workflow"
    assert error["message"] == "Prompt outputs failed validation"
    node_error = error["details"]["node_errors"]["3"]
    assert node_error["class_type"] == "KSampler"
    assert node_error["errors"][0]["type"] == "required_input_missing"
    assert submit(comfy, sdxl("fixed"), key=refused_key).status_code == 201

    ui = submit(comfy, {"nodes": [], "links": []})
    assert ui.status_code == 422 and ui.json()["error"]["code"] == "workflow_format_ui"


def test_a_failing_node_fails_the_job_naming_the_node(comfy: ComfyStack) -> None:
    comfy.comfyui.control(fail_node="VAEDecode", fail_message="CUDA out of memory")
    job_id = submit(comfy, sdxl("doomed")).json()["id"]
    done = wait_for(comfy, job_id, TERMINAL)
    assert done["status"] == "failed" and done["outputs"] == []
    assert done["error"]["code"] == "node_execution_error"
    assert done["error"]["node_id"] == "8" and done["error"]["class_type"] == "VAEDecode"
    assert done["error"]["message"].startswith("CUDA out of memory")


def test_queue_position_and_cancel_of_running_and_queued_jobs(comfy: ComfyStack) -> None:
    comfy.comfyui.control(step_s=0.2)
    first = submit(comfy, sdxl("long", steps=50)).json()["id"]
    second = submit(comfy, sdxl("waiting")).json()["id"]
    wait_for(comfy, first, {"running"})
    queued = job(comfy, second)
    assert queued["status"] == "queued" and queued["queue_position"] == 1
    assert job(comfy, first)["progress"] == {"value": 0.0, "nodes_done": 0, "nodes_total": 0}

    cancel = httpx.post(f"{comfy.proxy.url}/api/v2/jobs/{second}/cancel", timeout=10)
    assert cancel.status_code == 200
    # a dequeued prompt never reaches ComfyUI's history: the proxy calls it expired
    assert cancel.json()["status"] == "expired"

    canceling = httpx.post(f"{comfy.proxy.url}/api/v2/jobs/{first}/cancel", timeout=10).json()
    assert canceling["status"] in ("canceling", "canceled")
    assert wait_for(comfy, first, TERMINAL)["status"] == "canceled"
    again = httpx.post(f"{comfy.proxy.url}/api/v2/jobs/{first}/cancel", timeout=10)
    assert again.status_code == 200 and again.json()["status"] == "canceled"  # idempotent
    unknown = httpx.post(f"{comfy.proxy.url}/api/v2/jobs/{uuid.uuid4()}/cancel", timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_a_comfyui_restart_that_loses_the_queue_expires_the_job(comfy: ComfyStack) -> None:
    comfy.comfyui.control(step_s=0.2, crash_restart_s=0.5)
    job_id = submit(comfy, sdxl("lost", steps=50)).json()["id"]
    wait_for(comfy, job_id, {"running"})
    comfy.comfyui.control(crash=True)
    time.sleep(0.7)  # down, then back with an empty queue and history
    assert wait_for(comfy, job_id, TERMINAL)["status"] == "expired"


def test_an_uploaded_input_asset_is_hashed_with_blake3_and_deduplicated(comfy: ComfyStack) -> None:
    data = f"\x89PNG input {uuid.uuid4()}".encode()
    files = {"file": ("in.png", data, "image/png")}
    url = f"{comfy.proxy.url}/api/v2/assets"
    first = httpx.post(url, files=files, data={"file_path": "input/in.png"}, timeout=10)
    assert first.status_code == 201, first.text
    asset = first.json()
    assert asset["hash"] == "blake3:" + blake3.blake3(data).hexdigest()
    assert asset["size_bytes"] == len(data) and asset["created_new"] is True
    again = httpx.post(url, files=files, data={"file_path": "input/in.png"}, timeout=10)
    assert again.status_code == 200 and again.json()["id"] == asset["id"]
    assert again.json()["created_new"] is False
    # the proxy put the bytes into ComfyUI with POST /upload/image (type input)
    view = httpx.get(f"{comfy.comfyui.url}/view", params={"filename": "in.png", "type": "input"})
    assert view.status_code == 200
    assert httpx.get(asset["url"], timeout=10).content == data
