"""The queue over HTTP: positions in the fair order, a job's priority within its key's ceiling,
cancelling many, pause/resume for an admin key only, per-key visibility (docs/queue.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from pixelpipe.notify.hooks import wait_finished
from pixelpipe.security.keys import create_key
from tests.security.conftest import Running, bearer, running_app


async def _key(app: Running, scopes: str) -> tuple[str, str]:
    key, secret = await create_key(app.svc.db, name=scopes, scopes=scopes.split(","), rpm=0)
    return key.id, secret


async def _submit(client: httpx.AsyncClient, secret: str, prompt: str) -> str:
    body = {"prompt": prompt, "size": "64x64", "seed": 2}
    resp = await client.post("/v1/generations", json=body, headers=bearer(secret))
    assert resp.status_code in (201, 202), resp.text
    job_id: str = resp.json()["id"]
    return job_id


def _line(queue: dict[str, Any], target: str) -> dict[str, Any]:
    [line] = [ln for ln in queue["lines"] if ln["target"] == target]
    return line


async def test_steering_the_queue_over_http(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app, app.client() as client:
        _, admin = await _key(app, "generate,read,admin")
        _, alice = await _key(app, "generate,read")
        _, bob = await _key(app, "generate,read")
        as_admin, as_alice, as_bob = bearer(admin), bearer(alice), bearer(bob)

        # a non-admin key cannot pause; an admin drains the provider so that jobs wait
        resp = await client.post("/v1/admin/queue/pauses/preview", headers=as_alice, json={})
        assert resp.status_code == 403
        resp = await client.post(
            "/v1/admin/queue/pauses/preview", headers=as_admin, json={"reason": "upgrade"}
        )
        assert resp.status_code == 200 and resp.json()["reason"] == "upgrade"
        missing = await client.post("/v1/admin/queue/pauses/nope", headers=as_admin, json={})
        assert missing.status_code == 404 and "preview" in missing.json()["detail"]

        a = [await _submit(client, alice, f"alice {i}") for i in range(3)]
        b = await _submit(client, bob, "bob 0")
        await asyncio.sleep(0.3)  # the dispatcher looked, and left them waiting

        queue = (await client.get("/v1/queue", headers=as_admin)).json()
        line = _line(queue, "preview")
        assert line["paused"]["reason"] == "upgrade" and line["waiting_total"] == 4
        # fair share: bob's one request runs second, not behind all of alice's
        assert [j["id"] for j in line["waiting"]] == [a[0], b, a[1], a[2]]
        assert [j["position"] for j in line["waiting"]] == [1, 2, 3, 4]
        assert {j["priority"] for j in line["waiting"]} == {6}  # interactive by default

        job = (await client.get(f"/v1/generations/{b}", headers=as_bob)).json()
        assert job["progress"]["queue_position"] == 2 and job["priority"] == 6

        mine = _line((await client.get("/v1/queue", headers=as_alice)).json(), "preview")
        assert [j["id"] for j in mine["waiting"]] == a and mine["waiting_total"] == 4
        assert [j["position"] for j in mine["waiting"]] == [1, 3, 4]

        too_high = await client.post(
            f"/v1/queue/jobs/{a[2]}/priority", headers=as_alice, json={"priority": 9}
        )
        assert too_high.status_code == 422 and "ceiling of 6" in too_high.json()["detail"]
        not_hers = await client.post(
            f"/v1/queue/jobs/{b}/priority", headers=as_alice, json={"priority": 1}
        )
        assert not_hers.status_code == 403
        raised = await client.post(
            f"/v1/queue/jobs/{a[2]}/priority", headers=as_admin, json={"priority": 9}
        )
        assert raised.status_code == 200 and raised.json()["priority"] == 9
        line = _line((await client.get("/v1/queue", headers=as_admin)).json(), "preview")
        assert line["waiting"][0]["id"] == a[2]

        out = await client.post("/v1/queue/cancel", headers=as_bob, json={"ids": [a[0], b]})
        assert [(r["id"], r["status"]) for r in out.json()["data"]] == [
            (a[0], "forbidden"),
            (b, "canceled"),
        ]

        assert (await client.get("/v1/admin/queue/held", headers=as_admin)).json() == []
        resp = await client.delete("/v1/admin/queue/pauses/preview", headers=as_admin)
        assert resp.json() == {"target": "preview", "resumed": True}
        for job_id in a:
            done = await wait_finished(app.svc, job_id, timeout_s=30)
            assert done.status.value == "succeeded"
        queue = (await client.get("/v1/queue", headers=as_admin)).json()
        assert all(ln["waiting_total"] == 0 for ln in queue["lines"])
