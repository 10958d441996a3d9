"""The native ComfyUI backend through ``pixelpipe serve`` (issue 15), against the fake ComfyUI
served by ``pixelpipe fake-providers`` at BASE/comfyui (HTTP and WebSocket), both subprocesses:
a workflow model generates end to end (one image, one ledger entry priced in GPU time); progress
with denoising previews arrives before the image; a node error names the node; cancel mid-run;
SIGKILL of pixelpipe mid-run and the restart that re-attaches to the same prompt; ComfyUI
restarted mid-run (its queue lost) and the job retried.

What the jobs and the ledger hold is read from the server's SQLite file (``pixelpipe.db``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.selfhosted import server_rows
from tests.selfhosted.server_rows import events, image_bytes, job_row, wait_done
from tests.servers.comfy_graphs import sdxl
from tests.support.serve import Server, free_port, start_fake_providers, stop_pid

pytestmark = [pytest.mark.servers, pytest.mark.slow]

STARTUP_S = 120.0  # imports + migrations on a busy 2-core machine
BACKEND = "comfy_a"
MODEL = "sdxl-comfy"
CATALOG = """\
[backends.comfy_a]
kind = "comfyui"
url = "{url}"
usd_per_gpu_hour = 3.6

[models.sdxl-comfy]
label = "SDXL (ComfyUI)"
formats = ["png"]
aspect_ratios = {{ "1:1" = [64, 64] }}
steps = {{ min = 1, max = 60, default = 4 }}
typical_latency_s = 0.5
backends = ["comfy_a"]
workflow = "sdxl.json"
output_node = "9"

[models.sdxl-comfy.workflow_inputs]
prompt = "6.text"
seed = "3.seed"
steps = "3.steps"
width = "5.width"
height = "5.height"

[models.broken-comfy]
label = "A workflow naming a checkpoint the server lacks"
formats = ["png"]
aspect_ratios = {{ "1:1" = [64, 64] }}
backends = ["comfy_a"]
workflow = "broken.json"
workflow_inputs = {{ prompt = "6.text", seed = "3.seed" }}
"""


@dataclass
class Stack:
    fakes: str  # BASE of pixelpipe fake-providers
    tmp: Path

    @property
    def comfy(self) -> str:
        return f"{self.fakes}/comfyui"

    def control(self, **knobs: Any) -> None:
        httpx.post(f"{self.comfy}/_control", json=knobs, timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.comfy}/_stats", timeout=10).json()
        return body

    def running(self) -> list[Any]:
        queue: list[Any] = httpx.get(f"{self.comfy}/queue", timeout=10).json()["queue_running"]
        return queue


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("comfy-fakes") / "fakes.log"
    proc, url = start_fake_providers(log, timeout_s=STARTUP_S)
    try:
        yield url
    finally:
        stop_pid(proc)


@pytest.fixture
def stack(fakes: str, tmp_path: Path) -> Stack:
    stack = Stack(fakes, tmp_path)
    stack.control(reset=True)
    stack.control(step_s=0.02, fail_node="", crash_next=0)
    return stack


def start_serve(stack: Stack, *, port: int | None = None) -> Server:
    """``pixelpipe serve`` with a catalog file whose backend ``comfy_a`` is the fake ComfyUI."""
    tmp = stack.tmp
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "sdxl.json").write_text(json.dumps(titled(sdxl()), indent=2))
    broken = titled(sdxl())
    broken["4"]["inputs"]["ckpt_name"] = "not_on_this_server.safetensors"
    (tmp / "broken.json").write_text(json.dumps(broken, indent=2))
    catalog = tmp / "catalog.toml"
    catalog.write_text(CATALOG.format(url=stack.comfy))
    settings = {
        "PIXELPIPE_CATALOG_PATH": str(catalog),
        "PIXELPIPE_TEST_MODE": "true",
        "PIXELPIPE_SWEEP_INTERVAL_S": "0.5",
    }
    return Server(tmp / "data", settings, port=port).start(timeout_s=STARTUP_S)


def titled(graph: dict[str, Any]) -> dict[str, Any]:
    """The graph with the ``_meta`` titles ComfyUI exports."""
    titles = {"4": "Load Checkpoint", "3": "KSampler", "9": "Save Image"}
    for node, title in titles.items():
        graph[node]["_meta"] = {"title": title}
    return graph


def submit(srv: Server, seed: int, *, model: str = MODEL, steps: int | None = None) -> str:
    body: dict[str, Any] = {"prompt": "a red fox", "model": model, "seed": seed}
    if steps is not None:
        body["steps"] = steps
    return server_rows.submit(srv, body)


def images(srv: Server, job_id: str) -> int:
    sql = "SELECT count(*) FROM images WHERE job_id = ?"
    return int(server_rows.query(srv.data_dir, sql, job_id)[0][0])


def assert_billed_once(srv: Server, job_id: str, run: str) -> dict[str, Any]:
    """One ledger entry: billed on the ComfyUI backend, priced from the history's timestamps."""
    (entry,) = server_rows.ledger_entries(srv.data_dir, job_id)
    assert (entry["provider"], entry["state"], entry["basis"]) == (BACKEND, "billed", "gpu_time")
    assert entry["run"] == run
    seconds = entry["detail"]["gpu_seconds"]
    assert entry["detail"]["gpu_time_source"] == "server" and seconds > 0
    assert entry["micros"] == round(seconds * 1000)  # 3.6 $/h = 1000 µ$/s
    return entry


# ---- generate, progress with previews, node error, cancel (one server) ---------------------------
def test_generate_progress_node_error_and_cancel(stack: Stack) -> None:
    stack.control(step_s=0.08)  # 20 steps: 1.6 s, polled every 0.5 s
    srv = start_serve(stack)
    try:
        _generates_with_live_previews(srv, stack)
        _node_error_names_the_node(srv, stack)
        _cancel_mid_run(srv, stack)
    finally:
        srv.stop()


def _generates_with_live_previews(srv: Server, stack: Stack) -> None:
    before = stack.stats()["calls"].get("prompt", 0)
    gen = wait_done(srv, submit(srv, seed=10, steps=20))
    assert gen["status"] == "succeeded" and gen["provider"] == BACKEND, gen
    assert image_bytes(srv, gen).startswith(b"\x89PNG")
    assert stack.stats()["calls"]["prompt"] == before + 1
    (_, _, _, run) = job_row(srv, gen["id"])
    entry = assert_billed_once(srv, gen["id"], run)
    assert gen["cost"]["micros"] == entry["micros"]
    assert images(srv, gen["id"]) == 1
    seen = events(srv, gen["id"])
    names = [d.get("state", k) if k == "progress" else d.get("status", k) for k, d in seen]
    running = [
        d for k, d in seen if k == "progress" and d.get("state") == "running" and "step" in d
    ]
    assert len(running) >= 2, seen
    assert {d["steps"] for d in running} == {20}
    previews = [d["preview"] for d in running if "preview" in d]
    assert previews and all(p.startswith("data:image/jpeg;base64,") for p in previews)
    # the previews came while it ran, before the image was fetched
    first_preview = next(i for i, (k, d) in enumerate(seen) if "preview" in d)
    assert first_preview < names.index("fetching") < names.index("succeeded"), names


def _node_error_names_the_node(srv: Server, stack: Stack) -> None:
    gen = wait_done(srv, submit(srv, seed=11, model="broken-comfy"))
    assert gen["status"] == "failed", gen
    error = json.dumps(gen["error"])
    assert "provider_invalid_input" in error, error
    assert "node 4 (Load Checkpoint, CheckpointLoaderSimple)" in error, error
    assert "not_on_this_server.safetensors" in error, error
    assert gen["attempt"] == 1  # not retried: the workflow is wrong, not the server


def _cancel_mid_run(srv: Server, stack: Stack) -> None:
    creates = stack.stats()["creates"].get("SaveImage", 0)
    job_id = submit(srv, seed=12, steps=60)  # 4.8 s
    deadline = time.monotonic() + 30
    while job_row(srv, job_id)[0] != "waiting" or not stack.running():
        assert time.monotonic() < deadline, job_row(srv, job_id)
        time.sleep(0.05)
    resp = httpx.post(f"{srv.url}/v1/generations/{job_id}/cancel", timeout=30)
    assert resp.status_code == 200 and resp.json()["status"] == "canceled", resp.text
    deadline = time.monotonic() + 10
    while stack.running():  # the fake stops it at its next step
        assert time.monotonic() < deadline, "the prompt still runs after the cancel"
        time.sleep(0.05)
    assert stack.stats()["calls"]["interrupt"] >= 1
    assert stack.stats()["creates"].get("SaveImage", 0) == creates  # no image was made
    assert images(srv, job_id) == 0


# ---- SIGKILL mid-run, restart ------------------------------------------------------------------
def test_sigkill_mid_run_restart_reattaches_to_the_same_prompt(stack: Stack) -> None:
    stack.control(step_s=0.1)
    port = free_port()
    srv = start_serve(stack, port=port)
    before = stack.stats()["calls"].get("prompt", 0)
    job_id = submit(srv, seed=300, steps=40)  # 4 s
    deadline = time.monotonic() + 30
    while (row := job_row(srv, job_id))[0] != "waiting" or not stack.running():
        assert time.monotonic() < deadline, row
        time.sleep(0.05)
    run = row[3]
    srv.kill()  # ComfyUI goes on with the prompt; nothing of pixelpipe watches it
    srv = start_serve(stack, port=port)
    try:
        gen = wait_done(srv, job_id)
        assert gen["status"] == "succeeded" and gen["attempt"] == 1, gen
        assert image_bytes(srv, gen).startswith(b"\x89PNG")
        assert job_row(srv, job_id)[1:] == (1, BACKEND, run)  # the same prompt id
        assert stack.stats()["calls"]["prompt"] == before + 1  # queued once
        assert_billed_once(srv, job_id, run)
        assert images(srv, job_id) == 1
    finally:
        srv.stop()


# ---- ComfyUI restarted mid-run (its queue lost) ----------------------------------------------------
def test_comfyui_restart_mid_run_retries_the_job(stack: Stack) -> None:
    stack.control(step_s=0.05, crash_next=1, crash_at_step=3, crash_restart_s=1.0)
    srv = start_serve(stack)
    try:
        gen = wait_done(srv, submit(srv, seed=400, steps=10), timeout_s=90)
        seen = events(srv, gen["id"])
        lost = [d for k, d in seen if "provider_job_lost" in json.dumps(d)]
        assert lost, seen  # said why
        # retried with a new attempt (a new prompt) once the server was back: never left pending
        assert gen["status"] == "succeeded" and gen["attempt"] == 2, gen
        assert images(srv, gen["id"]) == 1
        entries = server_rows.ledger_entries(srv.data_dir, gen["id"])
        assert [e["attempt"] for e in entries if e["state"] == "billed"] == [2], entries
    finally:
        srv.stop()
