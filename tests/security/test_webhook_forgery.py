"""Provider webhooks under attack, through the real receiver and worker.

tests/e2e/test_providers_e2e.py already sends unsigned, forged-key, tampered and stale (-600 s)
deliveries through ``pixelpipe serve``. This file covers what that one does not: a *valid* delivery
replayed inside the tolerance window (it must be accepted exactly once), timestamps from the
future, a signature moved to another message id, truncated signatures, a signed-but-stale
update arriving after the end, and it checks that nothing at all changed after each refusal:
status, attempt, ledger, stored images, recorded deliveries and the job's event stream.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from pixelpipe.fakes.render import render
from pixelpipe.jobs.tables import images, webhook_deliveries
from pixelpipe.providers.signing import fal_sign, standard_signature
from tests.security.conftest import Running
from tests.security.test_outputs_e2e import pipeline

pytestmark = pytest.mark.slow


async def _waiting_job(srv: Running, provider: str) -> tuple[str, str]:
    async with srv.client() as c:
        # flux-dev: no `Prefer: wait` on Replicate, so the submit answers at once
        body = {"prompt": f"hook {secrets.token_hex(4)}", "model": "flux-dev", "seed": 1}
        r = await c.post("/v1/generations", json={**body, "provider": provider})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
    for _ in range(300):
        job = await srv.svc.store.get(job_id)
        if job is not None and job.status.value == "waiting" and job.provider_job_id:
            return job_id, job.provider_job_id
        await asyncio.sleep(0.02)
    raise AssertionError("job never reached waiting")


async def _snapshot(srv: Running, job_id: str) -> dict[str, Any]:
    """Everything a webhook could change about a job."""
    job = await srv.svc.store.get(job_id)
    assert job is not None
    async with srv.svc.db.read() as conn:
        n_images = (await conn.execute(select(func.count()).select_from(images))).scalar()
        deliveries = (
            await conn.execute(select(func.count()).select_from(webhook_deliveries))
        ).scalar()
    return {
        "status": job.status.value,
        "attempt": job.attempt,
        "provider_job_id": job.provider_job_id,
        "storage_key": job.storage_key,
        "ledger": len(await srv.svc.ledger.entries(job_id)),
        "images": n_images,
        "deliveries": deliveries,
        "events": len(await srv.svc.store.events_since(job_id)),
    }


def _png_data_uri() -> str:
    return "data:image/png;base64," + base64.b64encode(render("x", 1, 64, 64, "png")).decode()


def _replicate_body(run_id: str, status: str = "succeeded") -> bytes:
    pred = {"id": run_id, "status": status, "input": {"output_format": "png"}, "output": None}
    if status == "succeeded":
        pred["output"] = [_png_data_uri()]
    if status == "failed":
        pred["error"] = "CUDA out of memory"
    return json.dumps(pred).encode()


def _std_headers(secret: str, body: bytes, msg_id: str, ts: int) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": standard_signature(secret, msg_id, ts, body),
    }


async def _post(srv: Running, provider: str, body: bytes, headers: dict[str, str]) -> Any:
    async with srv.client() as c:
        return await c.post(f"/v1/webhooks/{provider}", content=body, headers=headers)


async def _until(srv: Running, job_id: str, status: str) -> None:
    for _ in range(500):
        job = await srv.svc.store.get(job_id)
        if job is not None and job.status.value == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{job_id} never reached {status}")


async def test_replicate_forgeries_change_nothing_and_a_replay_counts_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with pipeline(tmp_path, monkeypatch, test_mode=True) as (srv, fakes, _):
        fakes.replicate.behaviour.update({"latency_s": 120.0})
        job_id, run_id = await _waiting_job(srv, "replicate")
        secret = fakes.replicate.webhook_secret
        body = _replicate_body(run_id)
        now = int(time.time())
        signed = _std_headers(secret, body, "msg_real", now)
        other_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        forgeries = {
            "wrong key": _std_headers(other_secret, body, "msg_f1", now),
            "future timestamp": _std_headers(secret, body, "msg_f2", now + 600),
            "stale timestamp": _std_headers(secret, body, "msg_f3", now - 301),
            "signature moved to another id": {**signed, "webhook-id": "msg_other"},
            "timestamp changed": {**signed, "webhook-timestamp": str(now + 1)},
            "truncated signature": {
                **signed,
                "webhook-signature": signed["webhook-signature"][:-8],
            },
            "v0 scheme": {
                **signed,
                "webhook-signature": signed["webhook-signature"].replace("v1,", "v0,"),
            },
            "many garbage signatures": {**signed, "webhook-signature": " ".join(["v1,AAAA"] * 500)},
            "non-numeric timestamp": {**signed, "webhook-timestamp": "now"},
        }
        before = await _snapshot(srv, job_id)
        for what, headers in forgeries.items():
            r = await _post(srv, "replicate", body, headers)
            assert r.status_code == 401, (what, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json"), what
        r = await _post(srv, "replicate", body.replace(b"succeeded", b"failed"), signed)
        assert r.status_code == 401  # tampered body
        assert await _snapshot(srv, job_id) == before

        # the genuine delivery is applied once; replaying it inside the window is a no-op
        r = await _post(srv, "replicate", body, signed)
        assert r.status_code == 200 and r.json()["status"] == "applied"
        await _until(srv, job_id, "succeeded")
        done = await _snapshot(srv, job_id)
        assert done["ledger"] == 1 and done["images"] == 1
        outcomes = [
            (await _post(srv, "replicate", body, signed)).json()["status"] for _ in range(5)
        ]
        assert outcomes == ["duplicate"] * 5
        # a correctly signed, later "failed" for the same run (out of order): ignored
        late = _replicate_body(run_id, "failed")
        r = await _post(srv, "replicate", late, _std_headers(secret, late, "msg_late", now))
        assert r.status_code == 200 and r.json()["status"] in ("ignored", "duplicate")
        after = await _snapshot(srv, job_id)
        assert {k: v for k, v in after.items() if k != "deliveries"} == {
            k: v for k, v in done.items() if k != "deliveries"
        }


def _fal_body(run_id: str) -> bytes:
    payload = {"images": [{"url": _png_data_uri(), "width": 64, "height": 64}], "seed": 1}
    return json.dumps({"request_id": run_id, "status": "OK", "payload": payload}).encode()


def _fal_headers(key: Ed25519PrivateKey, run_id: str, body: bytes, ts: int) -> dict[str, str]:
    return {
        "X-Fal-Webhook-Request-Id": run_id,
        "X-Fal-Webhook-User-Id": "fake-user",
        "X-Fal-Webhook-Timestamp": str(ts),
        "X-Fal-Webhook-Signature": fal_sign(key, run_id, "fake-user", ts, body),
    }


async def test_fal_forgeries_change_nothing_and_a_replay_counts_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with pipeline(tmp_path, monkeypatch, test_mode=True) as (srv, fakes, _):
        fakes.fal.behaviour.update({"latency_s": 120.0})
        job_id, run_id = await _waiting_job(srv, "fal")
        key = fakes.fal.signing_keys[0]
        body = _fal_body(run_id)
        now = int(time.time())
        signed = _fal_headers(key, run_id, body, now)
        other_run = _fal_body("00000000-0000-4000-8000-000000000000")
        forgeries: dict[str, tuple[bytes, dict[str, str]]] = {
            "unknown key": (body, _fal_headers(Ed25519PrivateKey.generate(), run_id, body, now)),
            "future timestamp": (body, _fal_headers(key, run_id, body, now + 600)),
            "stale timestamp": (body, _fal_headers(key, run_id, body, now - 301)),
            "tampered body": (body.replace(b'"seed": 1', b'"seed": 2'), signed),
            "signature for another run": (other_run, signed),
            "user id changed": (body, {**signed, "X-Fal-Webhook-User-Id": "mallory"}),
            "signature not hex": (body, {**signed, "X-Fal-Webhook-Signature": "zz" * 64}),
        }
        before = await _snapshot(srv, job_id)
        for what, (payload, headers) in forgeries.items():
            r = await _post(srv, "fal", payload, headers)
            assert r.status_code == 401, (what, r.status_code, r.text)
        assert await _snapshot(srv, job_id) == before

        r = await _post(srv, "fal", body, signed)
        assert r.status_code == 200 and r.json()["status"] == "applied"
        await _until(srv, job_id, "succeeded")
        done = await _snapshot(srv, job_id)
        outcomes = [(await _post(srv, "fal", body, signed)).json()["status"] for _ in range(5)]
        assert outcomes == ["duplicate"] * 5
        assert await _snapshot(srv, job_id) == done
        assert done["ledger"] == 1 and done["images"] == 1
