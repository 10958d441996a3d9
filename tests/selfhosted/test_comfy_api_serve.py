"""A workflow model on a Comfy API v2 backend (the REAL comfy-api-proxy in front of the fake
ComfyUI, tests/servers/comfy_proxy.py) through ``pixelpipe serve`` in a subprocess (issue 15):
generate end to end (one image, one ledger entry in GPU time), live progress with previews before
the image, a node error named, cancel mid-run, and SIGKILL of pixelpipe mid-run → the restart
re-attaches to the same job; ComfyUI restarted mid-run (the job expires) → it runs again.

What the jobs and the ledger hold is read from the server's SQLite file (``pixelpipe.db``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.selfhosted import server_rows
from tests.selfhosted.server_rows import events, job_row, wait_done
from tests.servers.comfy_graphs import sdxl
from tests.servers.comfy_proxy import ComfyStack
from tests.support.serve import Server, free_port

pytestmark = [pytest.mark.servers, pytest.mark.slow]

STARTUP_S = 120.0  # imports + migrations on a busy 2-core machine
BACKEND = "comfy_v2"
MODEL = "sdxl-v2"
BROKEN = "broken-v2"
STEP_S = 0.2
CATALOG = """\
[backends.comfy_v2]
kind = "comfy_api"
url = "{url}"
usd_per_gpu_hour = 3.6

[models.sdxl-v2]
label = "SDXL on Comfy API v2"
formats = ["png"]
aspect_ratios = {{ "4:3" = [64, 48] }}
steps = {{ min = 1, max = 60, default = 8 }}
typical_latency_s = 2.0
backends = ["comfy_v2"]
workflow = "sdxl.json"

[models.sdxl-v2.workflow_inputs]
prompt = "6.text"
seed = "3.seed"
steps = "3.steps"

[models.broken-v2]
label = "a workflow ComfyUI refuses"
formats = ["png"]
aspect_ratios = {{ "4:3" = [64, 48] }}
backends = ["comfy_v2"]
workflow = "broken.json"
"""


def start_serve(tmp: Path, proxy_url: str, port: int | None = None) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    graph = sdxl()
    graph["3"]["_meta"] = {"title": "Main sampler"}
    (tmp / "sdxl.json").write_text(json.dumps(graph, indent=2))
    broken = sdxl()
    broken["3"]["_meta"] = {"title": "Main sampler"}
    broken["6"]["inputs"]["text"] = "%prompt%"
    del broken["3"]["inputs"]["steps"]  # ComfyUI: required_input_missing
    (tmp / "broken.json").write_text(json.dumps(broken, indent=2))
    catalog = tmp / "catalog.toml"
    catalog.write_text(CATALOG.format(url=proxy_url))
    settings = {
        "PIXELPIPE_CATALOG_PATH": str(catalog),
        "PIXELPIPE_TEST_MODE": "true",
        "PIXELPIPE_SWEEP_INTERVAL_S": "0.5",
    }
    return Server(tmp / "data", settings, port=port or free_port()).start(timeout_s=STARTUP_S)


@pytest.fixture(scope="module")
def srv(comfy_stack: ComfyStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One pixelpipe for the tests that do not kill it."""
    server = start_serve(tmp_path_factory.mktemp("serve"), comfy_stack.proxy.url)
    try:
        yield server
    finally:
        server.stop()


def submit(srv: Server, seed: int, *, model: str = MODEL, steps: int | None = None) -> str:
    body: dict[str, Any] = {"prompt": "a v2 lighthouse", "model": model, "seed": seed}
    if steps is not None:
        body["steps"] = steps
    return server_rows.submit(srv, body)


def query(srv: Server, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return server_rows.query(srv.data_dir, sql, *args)


def proxy_job(comfy: ComfyStack, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{comfy.proxy.url}/api/v2/jobs/{job_id}", timeout=10).json())


def wait_running(srv: Server, comfy: ComfyStack, job_id: str) -> str:
    """The job waits on its v2 job, which ComfyUI runs: that job's id."""
    deadline = time.monotonic() + 30
    while True:
        status, _, _, run = job_row(srv, job_id)
        if status == "waiting" and run and proxy_job(comfy, run)["status"] == "running":
            return str(run)
        assert time.monotonic() < deadline, (status, run)
        time.sleep(0.05)


def assert_one_image_one_entry(srv: Server, gen: dict[str, Any]) -> dict[str, Any]:
    url = gen["image"]["url"]
    image = httpx.get(url if url.startswith("http") else srv.url + url, timeout=30)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert query(srv, "SELECT count(*) FROM images WHERE job_id = ?", gen["id"]) == [(1,)]
    (entry,) = server_rows.ledger_entries(srv.data_dir, gen["id"])
    assert (entry["provider"], entry["state"], entry["basis"]) == (BACKEND, "billed", "gpu_time")
    seconds = entry["detail"]["gpu_seconds"]
    assert entry["detail"]["gpu_time_source"] == "wall"  # the proxy reports no execution_ms
    assert entry["micros"] == round(seconds * 1000)  # 3.6 $/h = 1000 µ$/s
    assert gen["cost"]["micros"] == entry["micros"]
    return entry


def test_a_workflow_generates_with_previews_before_the_image(
    srv: Server, comfy: ComfyStack
) -> None:
    comfy.comfyui.control(step_s=STEP_S)
    gen = wait_done(srv, submit(srv, seed=11))
    assert gen["status"] == "succeeded" and gen["provider"] == BACKEND, gen
    entry = assert_one_image_one_entry(srv, gen)
    assert entry["detail"]["gpu_seconds"] >= 8 * STEP_S  # 8 sampler steps ran
    seen = events(srv, gen["id"])
    progress = [d for kind, d in seen if kind == "progress" and d.get("state") == "running"]
    assert any(d.get("steps") == 8 for d in progress), seen
    done_at = next(i for i, (k, d) in enumerate(seen) if k == "status" and "succeeded" in str(d))
    previews = [i for i, (k, d) in enumerate(seen) if k == "progress" and "preview" in d]
    assert previews and max(previews) < done_at, seen
    assert all(seen[i][1]["preview"].startswith("data:image/jpeg;base64,") for i in previews)
    # ComfyUI ran the request's graph: our prompt, seed and steps
    graph = proxy_graph(comfy, job_row(srv, gen["id"])[3])
    assert graph["6"]["inputs"]["text"] == "a v2 lighthouse"
    assert (graph["3"]["inputs"]["seed"], graph["3"]["inputs"]["steps"]) == (11, 8)


def proxy_graph(comfy: ComfyStack, run: str) -> dict[str, Any]:
    resp = httpx.get(f"{comfy.proxy.url}/api/v2/jobs/{run}/workflow", timeout=10)
    return dict(resp.json()["workflow"])


def test_a_node_error_names_the_node(srv: Server, comfy: ComfyStack) -> None:
    gen = wait_done(srv, submit(srv, seed=12, model=BROKEN))
    assert gen["status"] == "failed", gen
    assert gen["error"]["code"] == "provider_invalid_input", gen["error"]
    assert "node 3 (Main sampler, KSampler)" in gen["error"]["detail"]
    assert server_rows.ledger_entries(srv.data_dir, gen["id"]) == []  # nothing ran, nothing billed


def test_a_failing_node_is_named(srv: Server, comfy: ComfyStack) -> None:
    comfy.comfyui.control(fail_node="VAEDecode", fail_message="CUDA out of memory")
    gen = wait_done(srv, submit(srv, seed=13))
    assert gen["status"] == "failed", gen
    assert "node 8 (VAEDecode) failed: CUDA out of memory" in gen["error"]["detail"]


def test_cancel_mid_run(srv: Server, comfy: ComfyStack) -> None:
    comfy.comfyui.control(step_s=STEP_S)
    job_id = submit(srv, seed=14, steps=50)
    run = wait_running(srv, comfy, job_id)
    resp = httpx.post(f"{srv.url}/v1/generations/{job_id}/cancel", timeout=30)
    assert resp.status_code == 200 and resp.json()["status"] == "canceled", resp.text
    deadline = time.monotonic() + 20
    while proxy_job(comfy, run)["status"] != "canceled":  # ComfyUI stopped it too
        assert time.monotonic() < deadline, proxy_job(comfy, run)
        time.sleep(0.1)
    assert query(srv, "SELECT count(*) FROM images WHERE job_id = ?", job_id) == [(0,)]


def test_sigkill_mid_run_the_restart_reattaches(tmp_path: Path, comfy: ComfyStack) -> None:
    comfy.comfyui.control(step_s=STEP_S)
    port = free_port()
    srv = start_serve(tmp_path, comfy.proxy.url, port=port)
    job_id = submit(srv, seed=15, steps=20)
    run = wait_running(srv, comfy, job_id)
    srv.kill()  # ComfyUI keeps running the prompt; nobody polls it
    srv = start_serve(tmp_path, comfy.proxy.url, port=port)
    try:
        gen = wait_done(srv, job_id)
        assert gen["status"] == "succeeded" and gen["attempt"] == 1, gen
        assert job_row(srv, job_id)[1:] == (1, BACKEND, run)  # the same v2 job
        entry = assert_one_image_one_entry(srv, gen)
        assert entry["run"] == run
        # one run at the server: the attempt's key made one job
        jobs = httpx.get(f"{comfy.proxy.url}/api/v2/jobs?limit=100", timeout=30).json()["jobs"]
        assert [j["id"] for j in jobs if str(j.get("metadata", "")).startswith(job_id)] == [run]
    finally:
        srv.stop()


def test_a_comfyui_restart_mid_run_runs_the_job_again(srv: Server, comfy: ComfyStack) -> None:
    comfy.comfyui.control(step_s=STEP_S, crash_restart_s=0.5)
    job_id = submit(srv, seed=16, steps=20)
    lost = wait_running(srv, comfy, job_id)
    comfy.comfyui.control(crash=True)  # back in 0.5 s with an empty queue: the job expires
    time.sleep(1.0)
    comfy.comfyui.control(step_s=0.01)
    gen = wait_done(srv, job_id)
    assert gen["status"] == "succeeded" and gen["attempt"] == 2, gen
    assert job_row(srv, job_id)[3] != lost  # a new v2 job
    assert proxy_job(comfy, lost)["status"] == "expired"
    retried = [d for kind, d in events(srv, job_id) if kind == "retry"]
    assert any("expired" in json.dumps(d) for d in retried), retried
    entries = server_rows.ledger_entries(srv.data_dir, job_id)
    # the lost attempt may have used the GPU for a while: unconfirmed, not billed twice
    assert [(e["attempt"], e["state"]) for e in entries] == [(1, "unconfirmed"), (2, "billed")]
