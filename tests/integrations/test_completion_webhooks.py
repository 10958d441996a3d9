"""Completion webhooks, end to end: signed (Standard Webhooks), retried, verifiable."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.integrations.conftest import WEBHOOK_SECRET, Receiver, start_server
from tests.support.serve import CLI

pytestmark = pytest.mark.slow
FAST_RETRIES = {"PIXELPIPE_WEBHOOK_RETRY_SCHEDULE_S": "0.3,0.6,1.2"}


def _verify(secret: str, headers: dict[str, str], body: bytes) -> dict:  # type: ignore[type-arg]
    return Webhook(secret).verify(body, headers)  # type: ignore[no-any-return]


def test_webhook_is_signed_retried_with_the_same_id_and_tamper_evident(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.statuses = [500]  # the first delivery fails
    env = {
        **FAST_RETRIES,
        "PIXELPIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PIXELPIPE_WEBHOOK_ALLOW_PRIVATE": "true",
        "PIXELPIPE_PREVIEW_LATENCY_MS": "200",
    }
    srv = start_server(tmp_path / "data", env)
    try:
        body = {"prompt": "a signed fox", "seed": 5, "size": "64x64", "webhook": receiver.url}
        job = httpx.post(f"{srv.url}/v1/generations", json=body, timeout=10).json()
        first, second = receiver.wait_for(2)
    finally:
        srv.stop()

    # the same message, twice: stable webhook-id, fresh signature per attempt
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{job['id']}"
    assert first.body == second.body
    assert second.at > first.at
    payload = _verify(WEBHOOK_SECRET, second.headers, second.body)
    assert payload["type"] == "generation.succeeded"
    data = payload["data"]
    assert data["id"] == job["id"] and data["status"] == "succeeded"
    assert data["image"]["url"].startswith("http://127.0.0.1:")  # absolute
    assert data["links"]["self"].endswith(f"/v1/generations/{job['id']}")
    _verify(WEBHOOK_SECRET, first.headers, first.body)  # the failed attempt was signed too

    # a receiver rejects a tampered body, a forged signature or another secret
    tampered = second.body.replace(b"succeeded", b"failed")
    with pytest.raises(WebhookVerificationError):
        _verify(WEBHOOK_SECRET, second.headers, tampered)
    forged = {
        **second.headers,
        "webhook-signature": "v1,AAAA" + second.headers["webhook-signature"][7:],
    }
    with pytest.raises(WebhookVerificationError):
        _verify(WEBHOOK_SECRET, forged, second.body)
    with pytest.raises(WebhookVerificationError):
        _verify("whsec_" + "QUJD" * 8, second.headers, second.body)


def test_generated_secret_cache_hits_and_refused_prompts(
    tmp_path: Path, receiver: Receiver
) -> None:
    """No secret configured: one is generated and kept; `pixelpipe webhook-secret` prints it."""
    data_dir = tmp_path / "data"
    env = {**FAST_RETRIES, "PIXELPIPE_WEBHOOK_ALLOW_PRIVATE": "true"}
    srv = start_server(data_dir, env)
    try:
        body = {"prompt": "a hooked owl", "seed": 9, "size": "64x64", "webhook": receiver.url}
        first = httpx.post(f"{srv.url}/v1/generations", json=body, timeout=10).json()
        receiver.wait_for(1)
        # a cache hit is a finished job too: it gets its own webhook
        hit = httpx.post(f"{srv.url}/v1/generations", json=body, timeout=10).json()
        assert hit["cached"] is True
        receiver.wait_for(2)
        # a bad webhook URL is refused at intake, before anything is spent
        bad = httpx.post(
            f"{srv.url}/v1/generations", json={**body, "webhook": "ftp://x/y"}, timeout=10
        )
        assert bad.status_code == 422 and bad.json()["field"] == "webhook"
    finally:
        srv.stop()
    secret = subprocess.run(
        [*CLI, "webhook-secret"],
        env={**srv.env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert secret.startswith("whsec_")
    assert (data_dir / "webhook.secret").read_text().strip() == secret
    ids = []
    for rec in receiver.received:
        payload = _verify(secret, rec.headers, rec.body)
        ids.append(payload["data"]["id"])
        assert json.loads(rec.body)["type"] == "generation.succeeded"
    assert ids == [first["id"], hit["id"]]
