"""Per-API-key completion webhooks, end to end: a key made with `pixelpipe keys create --webhook`
gets a signed webhook for each job it starts; a request's own `webhook` wins; `keys set-webhook`
applies to the next request without a restart."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.integrations.conftest import WEBHOOK_SECRET, Receiver, start_server
from tests.support.serve import CLI

pytestmark = pytest.mark.slow


def _keys(data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [*CLI, "keys", *args],
        # the server's webhook rule: its receiver is on 127.0.0.1 (refused without the opt-in)
        env={
            **os.environ,
            "PIXELPIPE_DATA_DIR": str(data_dir),
            "PIXELPIPE_WEBHOOK_ALLOW_PRIVATE": "true",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_a_keys_webhook_reports_its_jobs_signed_and_a_requests_own_wins(
    tmp_path: Path, receiver: Receiver
) -> None:
    data_dir = tmp_path / "data"
    via_key = receiver.url + "?via=key"
    made = json.loads(_keys(data_dir, "create", "--name", "hooked", "--webhook", via_key, "--json"))
    key, key_id = made["key"], made["id"]
    assert made["webhook"] == via_key
    env = {
        "PIXELPIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PIXELPIPE_WEBHOOK_ALLOW_PRIVATE": "true",
        "PIXELPIPE_WEBHOOK_RETRY_SCHEDULE_S": "0.3,0.6,1.2",
    }
    srv = start_server(data_dir, env)
    auth = {"Authorization": f"Bearer {key}"}

    def generate(seed: int, **extra: Any) -> str:
        body = {"prompt": "a keyed heron", "seed": seed, "size": "64x64", **extra}
        r = httpx.post(f"{srv.url}/v1/generations", json=body, headers=auth, timeout=10)
        assert r.status_code == 202, r.text
        job_id: str = r.json()["id"]
        return job_id

    try:
        # keys are on: without the key the request is refused (so the key is what matched)
        anon = {"prompt": "a keyed heron", "seed": 1, "size": "64x64"}
        assert httpx.post(f"{srv.url}/v1/generations", json=anon, timeout=10).status_code == 401
        by_key = generate(1)
        by_request = generate(2, webhook=receiver.url + "?via=request")
        receiver.wait_for(2)
        # a change of the key's webhook applies to the next request, without a restart
        _keys(data_dir, "set-webhook", key_id, receiver.url + "?via=changed")
        changed = generate(3)
        receiver.wait_for(3)
        listed = _keys(data_dir, "list")
    finally:
        srv.stop()

    seen: dict[str, str] = {}
    for rec in receiver.received:
        payload = Webhook(WEBHOOK_SECRET).verify(rec.body, rec.headers)  # raises if not signed
        assert payload["type"] == "generation.succeeded"
        job_id = payload["data"]["id"]
        assert payload["data"]["status"] == "succeeded"
        assert rec.headers["webhook-id"] == f"msg_{job_id}"
        seen[job_id] = rec.path.rpartition("?")[2]
    assert seen == {by_key: "via=key", by_request: "via=request", changed: "via=changed"}
    assert key_id in listed and "via=changed" in listed
    assert key.split("_", 2)[2] not in listed  # never the secret
