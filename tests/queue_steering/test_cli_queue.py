"""``pixelpipe queue`` against a running server (``--server``, with an admin key) and in-process
on the same data directory: both see the pause that the other made (it lives in the database)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.support.serve import Server, run_cli


def test_queue_from_a_terminal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = run_cli(
        "keys", "create", "--scopes", "generate,read,admin", "--json", PIXELPIPE_DATA_DIR=str(data)
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    env = {"PIXELPIPE_API_KEY": key}
    with Server(data) as srv:
        remote = ["--server", srv.url]
        paused = run_cli("queue", "pause", "preview", "--reason", "new GPU", *remote, **env)
        assert paused.returncode == 0 and "preview: paused" in paused.stdout, paused.stderr
        headers = {"Authorization": f"Bearer {key}"}
        body = {"prompt": "a lighthouse", "size": "64x64", "seed": 4}
        ids = [
            httpx.post(
                f"{srv.url}/v1/generations", json={**body, "seed": s}, headers=headers
            ).json()["id"]
            for s in range(3)
        ]
        shown = run_cli("queue", "--json", *remote, **env)
        assert shown.returncode == 0, shown.stderr
        [line] = json.loads(shown.stdout)["lines"]
        assert line["paused"]["reason"] == "new GPU"
        assert [j["id"] for j in line["waiting"]] == ids

        table = run_cli("queue", *remote, **env)
        assert "PAUSED (new GPU)" in table.stdout and ids[0] in table.stdout

        moved = run_cli("queue", "priority", ids[2], "8", *remote, **env)
        assert moved.returncode == 0 and "priority 8" in moved.stdout, moved.stderr
        canceled = run_cli("queue", "cancel", ids[0], "gen_nope", *remote, **env)
        assert canceled.returncode == 2  # one of them could not be canceled
        assert f"{ids[0]}: canceled" in canceled.stdout and "gen_nope: not_found" in canceled.stdout

        # in-process, on the server's own database: the same queue, the same pause
        local = run_cli("queue", "--json", PIXELPIPE_DATA_DIR=str(data))
        assert local.returncode == 0, local.stderr
        [line] = json.loads(local.stdout)["lines"]
        assert [j["id"] for j in line["waiting"]] == [ids[2], ids[1]]
        resumed = run_cli("queue", "resume", "preview", PIXELPIPE_DATA_DIR=str(data))
        assert resumed.stdout.strip() == "preview: resumed", resumed.stderr

        # the server's dispatcher runs the resumed jobs (it read the pause from the database)
        deadline = time.monotonic() + 60
        while _status(srv.url, ids[1], headers) != "succeeded":
            assert time.monotonic() < deadline, "the resumed job never ran"
            time.sleep(0.2)
        nothing = run_cli("queue", "held", *remote, **env)
        assert nothing.stdout.strip() == "no quarantined jobs"


def _status(url: str, job_id: str, headers: dict[str, str]) -> str:
    status: str = httpx.get(f"{url}/v1/generations/{job_id}", headers=headers).json()["status"]
    return status
