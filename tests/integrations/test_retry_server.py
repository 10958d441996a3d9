"""``POST /v1/generations/{id}/retry`` on ``pixelpipe serve``, the Python client and
``pixelpipe retry --server``: a canceled job retries as a new one that names it (``retry_of``),
also after a restart; a job that succeeded is a 409."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve import Server, run_cli

pytestmark = pytest.mark.slow


def wait_done(srv: Server, gen_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = httpx.get(f"{srv.url}/v1/generations/{gen_id}", timeout=10).json()
        if body["status"] in ("succeeded", "failed", "canceled"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_a_canceled_generation_retries_and_remembers_what_it_retried(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"PIXELPIPE_PREVIEW_LATENCY_MS": "1500"}
    body = {"prompt": "a slow lighthouse", "model": "preview", "seed": 4, "size": "64x64"}
    with Server(data, env) as srv:
        first = httpx.post(f"{srv.url}/v1/generations", json=body, timeout=10).json()
        canceled = httpx.post(f"{srv.url}/v1/generations/{first['id']}/cancel", timeout=10)
        assert canceled.json()["status"] == "canceled"
        res = httpx.post(f"{srv.url}/v1/generations/{first['id']}/retry", timeout=10)
        assert res.status_code == 202, res.text
        new = res.json()
        assert new["retry_of"] == first["id"] and new["id"] != first["id"]
        assert res.headers["location"].endswith(f"/v1/generations/{new['id']}")
        assert new["request"] == first["request"] and new["key"] == first["key"]
        done = wait_done(srv, new["id"])
        assert done["status"] == "succeeded" and done["retry_of"] == first["id"]
        again = httpx.post(f"{srv.url}/v1/generations/{new['id']}/retry", timeout=10)
        assert again.status_code == 409 and "succeeded" in again.json()["detail"]
        # the CLI against the server: the canceled one again, now a cache hit (its image exists)
        res2 = run_cli("retry", first["id"], "--server", srv.url, "--json")
        assert res2.returncode == 0, res2.stderr
        cached = json.loads(res2.stdout)
        assert cached["retry_of"] == first["id"] and cached["cached"] is True
        srv.kill()
    with Server(data, env) as srv:  # the lineage is in the job store: it survives a restart
        assert wait_done(srv, new["id"])["retry_of"] == first["id"]
        missing = httpx.post(f"{srv.url}/v1/generations/gen_nosuchjob/retry", timeout=10)
        assert missing.status_code == 404
    # the CLI in this process, on the same data directory (no server running)
    local = {"PIXELPIPE_DATA_DIR": str(data)}
    res3 = run_cli("retry", first["id"], "--json", **local)
    assert res3.returncode == 0, res3.stderr
    assert json.loads(res3.stdout)["retry_of"] == first["id"]
    refused = run_cli("retry", new["id"], **local)  # it succeeded: nothing to retry
    assert refused.returncode == 1 and "succeeded" in refused.stderr, refused.stderr
