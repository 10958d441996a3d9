"""The Comfy API v2 backend against Comfy Cloud's contract, where it differs from comfy-api-proxy
0.1.6 (shared/reference/self-hosted.md): a replayed ``Idempotency-Key`` (``Idempotency-Replayed:
true``), 429 ``queue_full`` and 409 (a concurrent retry of one key) with ``Retry-After``, the
Bearer key, and a server without ``/api/v2/health``. Comfy Cloud cannot run here: its answers
are scripted on a real HTTP server (tests/servers/http_recorder.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from pixelpipe.errors import ProviderJobLost, ProviderRateLimited
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import HealthState, ProviderRequest, RunState
from pixelpipe.providers.comfy_api.client import EXPIRED_GRACE_S, ComfyApiProvider
from pixelpipe.providers.registration import Backend
from pixelpipe.settings import load_settings
from pixelpipe.workflows import Workflow, load_workflow
from tests.servers.comfy_graphs import sdxl
from tests.servers.http_recorder import Answer, HttpRecorder, RecordedRequest

SECRET = load_settings(secret_key="comfy-cloud-test-secret-0123456789abcdef").signing_key()
KEY = "comfyui-cloud-key-0123456789"
JOB = "7c4bd7a4-4a5e-4c57-a0b4-3f1f4c1b7e11"


def answer(status: int, body: dict[str, Any], **headers: str) -> Answer:
    return Answer(
        status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()
    )


def done() -> dict[str, Any]:
    image = {"node_id": "9", "type": "image", "url": "https://x/out.png", "hash": None}
    return {"id": JOB, "status": "succeeded", "outputs": [image], "error": None}


def queued() -> dict[str, Any]:
    return {"id": JOB, "status": "queued", "queue_position": 3, "outputs": [], "error": None}


class Cloud:
    """Answers by path; ``submits``: the answers of ``POST /api/v2/jobs`` in turn."""

    def __init__(self) -> None:
        self.submits: list[Answer] = []
        self.health = answer(404, {"error": {"code": "not_found", "message": "no route"}})
        self.jobs: Callable[[], Answer] | None = None  # GET of the job JOB, when scripted

    def __call__(self, req: RecordedRequest) -> Answer:
        if req.method == "POST" and req.path == "/api/v2/jobs":
            return self.submits.pop(0)
        if req.path == "/api/v2/health":
            return self.health
        if req.method == "GET" and req.path == f"/api/v2/jobs/{JOB}" and self.jobs is not None:
            return self.jobs()
        if req.path.startswith("/api/v2/jobs"):
            return answer(200, {"jobs": []})
        return answer(404, {"error": {"code": "not_found", "message": req.path}})


class GetRecorder(HttpRecorder):
    """The recorder answering GET too (it serves POST and PUT, for webhooks and uploads)."""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        handler = super()._handler_class()
        handler.do_GET = handler._any  # type: ignore[attr-defined]
        return handler


@pytest.fixture
def cloud() -> Iterator[tuple[Cloud, HttpRecorder]]:
    script = Cloud()
    with GetRecorder(script) as server:
        yield script, server


@pytest.fixture
def workflow(tmp_path: Path) -> Workflow:
    path = tmp_path / "sdxl.json"
    path.write_text(json.dumps(sdxl()))
    return load_workflow(path, {"prompt": ["6.text"], "seed": ["3.seed"]})


def request(workflow: Workflow) -> ProviderRequest:
    canonical = CanonicalRequest(
        model="m", prompt="a cloud fox", seed=5, width=64, height=48, format="png"
    )
    return ProviderRequest("job_c", 1, canonical, "m", workflow=workflow)


def v2(server: HttpRecorder) -> ComfyApiProvider:
    backend = Backend("cloud", "comfy_api", server.url(""), api_key=KEY)
    return ComfyApiProvider(backend, secret=SECRET)


async def test_a_replayed_key_is_the_same_job_and_the_key_is_sent_as_bearer(
    cloud: tuple[Cloud, HttpRecorder], workflow: Workflow
) -> None:
    script, server = cloud
    script.submits = [
        answer(201, queued()),
        answer(200, queued(), **{"Idempotency-Replayed": "true"}),
    ]
    p = v2(server)
    try:
        req = request(workflow)
        first = await p.submit(req)
        again = await p.find_run(req, since=0.0)  # the resend after a crash
    finally:
        await p.aclose()
    assert again is not None and again.provider_job_id == first.provider_job_id == JOB
    assert first.state is RunState.PENDING and first.progress["queue_position"] == 3
    sent = server.requests("/api/v2/jobs")
    assert [r.headers["idempotency-key"] for r in sent] == [p.run_key(req)] * 2
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in sent)
    body = sent[0].json()
    assert body["metadata"] == p.run_key(req)
    assert body["workflow"]["6"]["inputs"]["text"] == "a cloud fox"
    assert body["workflow"]["3"]["inputs"]["seed"] == 5


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [(429, "queue_full", "7"), (409, "idempotency_conflict", "2"), (409, "conflict", None)],
)
async def test_a_full_queue_or_a_concurrent_retry_waits_the_retry_after(
    cloud: tuple[Cloud, HttpRecorder],
    workflow: Workflow,
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    script, server = cloud
    headers = {"Retry-After": retry_after} if retry_after else {}
    script.submits = [answer(status, {"error": {"code": code, "message": code}}, **headers)]
    p = v2(server)
    try:
        with pytest.raises(ProviderRateLimited) as limited:
            await p.submit(request(workflow))
    finally:
        await p.aclose()
    assert limited.value.retry_after == (float(retry_after) if retry_after else 1.0)


async def test_health_without_a_health_route_asks_the_jobs_api(
    cloud: tuple[Cloud, HttpRecorder],
) -> None:
    script, server = cloud
    p = v2(server)
    try:
        assert (await p.backend_health()).state is HealthState.READY
        script.health = answer(200, {"status": "degraded"})
        health = await p.backend_health()
    finally:
        await p.aclose()
    assert (health.state, health.detail) == (HealthState.DOWN, "degraded")
    assert [r.path for r in server.requests("/api/v2/jobs")] == ["/api/v2/jobs?limit=1"]


async def test_an_expired_read_in_passing_is_not_a_lost_job(
    cloud: tuple[Cloud, HttpRecorder], workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """comfy-api-proxy reads ComfyUI's /history then /queue: a prompt finishing between the two
    reads "expired" once. That is not believed until it lasts EXPIRED_GRACE_S — the run that
    ended well is taken, not run (and billed) a second time; one that stays expired is lost."""
    script, server = cloud
    answers = [answer(200, {**queued(), "status": "expired"}), answer(200, done())]
    script.jobs = lambda: answers.pop(0)
    p = v2(server)
    try:
        req = request(workflow)
        passing = await p.poll(JOB, req)
        assert passing.state is RunState.RUNNING and passing.poll_after_s == 0.5
        assert (await p.poll(JOB, req)).state is RunState.SUCCEEDED
        script.jobs = lambda: answer(200, {**queued(), "status": "expired"})
        assert (await p.poll(JOB, req)).state is RunState.RUNNING  # first seen now
        clock = time.monotonic() + EXPIRED_GRACE_S
        monkeypatch.setattr(time, "monotonic", lambda: clock)
        with pytest.raises(ProviderJobLost, match="expired"):
            await p.poll(JOB, req)
    finally:
        await p.aclose()
