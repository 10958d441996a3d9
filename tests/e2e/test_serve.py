"""End to end through `pixelpipe serve` in a subprocess, on embedded defaults."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support.serve import Server, metric

pytestmark = pytest.mark.slow
SUBMISSIONS = "pixelpipe_provider_submissions_total"


def follow_sse(url: str, *, last_event_id: str | None = None, timeout: float = 30) -> list[dict]:
    """Read an SSE stream to its end; returns the decoded events."""
    events: list[dict] = []
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as resp:
        assert resp.status_code == 200
        cur: dict = {}
        for line in resp.iter_lines():
            if line.startswith("id:"):
                cur["id"] = line[3:].strip()
            elif line.startswith("event:"):
                cur["event"] = line[6:].strip()
            elif line.startswith("data:"):
                cur["data"] = json.loads(line[5:].strip())
            elif not line and cur:
                events.append(cur)
                cur = {}
    return events


def test_generate_follow_sse_fetch_image_then_cache_hit(tmp_path: Path) -> None:
    with Server(tmp_path / "data", {"PIXELPIPE_PREVIEW_LATENCY_MS": "300"}) as srv:
        body = {"prompt": "a lighthouse at dusk", "model": "preview", "seed": 11, "size": "256x256"}
        r = httpx.post(f"{srv.url}/v1/generations", json=body, timeout=10)
        assert r.status_code == 202, r.text
        job = r.json()
        # handed over in-process and its provider free to take it: admitted already submitting
        assert job["status"] == "submitting" and job["cached"] is False
        assert r.headers["location"] == f"{srv.url}/v1/generations/{job['id']}"
        assert job["links"]["self"] == r.headers["location"]  # absolute, on the URL we called

        events = follow_sse(job["links"]["events"])
        statuses = [e["data"]["status"] for e in events if e.get("event") == "status"]
        assert statuses[0] == "queued" and statuses[-1] == "succeeded"
        assert {"submitting", "waiting", "fetching", "storing"} <= set(statuses)
        ids = [int(e["id"]) for e in events]
        assert ids == sorted(ids)
        done = events[-1]["data"]["job"]
        assert done["cost"]["status"] == "free" and done["image"]["width"] == 256

        assert done["image"]["url"].startswith(f"{srv.url}/v1/images/")
        img = httpx.get(done["image"]["url"], timeout=10)
        assert img.status_code == 200 and img.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(img.content)).size == (256, 256)
        thumb = httpx.get(done["image"]["thumbnail_url"], timeout=10)
        assert thumb.status_code == 200

        # replay from Last-Event-ID: only what came after
        replay = follow_sse(job["links"]["events"], last_event_id=events[-2]["id"])
        assert [e["id"] for e in replay] == [events[-1]["id"]]

        calls = metric(srv.url, SUBMISSIONS, 'provider="preview"')
        again = httpx.post(f"{srv.url}/v1/generations", json=body, timeout=10)
        assert again.status_code == 200
        hit = again.json()
        assert hit["cached"] is True and hit["status"] == "succeeded"
        assert hit["image"]["url"] == done["image"]["url"]
        assert hit["cost"]["usd"] == "0.00"
        assert metric(srv.url, SUBMISSIONS, 'provider="preview"') == calls

        # tampered signed URL → 403 problem
        bad = httpx.get(done["image"]["url"].replace("sig=", "sig=x"), timeout=10)
        assert bad.status_code == 403
        assert bad.headers["content-type"].startswith("application/problem+json")

    # the URL keeps working after a restart (same data dir, same signing key; another port)
    with Server(tmp_path / "data") as srv2:
        img = httpx.get(done["image"]["url"].replace(srv.url, srv2.url), timeout=10)
        assert img.status_code == 200


async def _burst(url: str, body: dict, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(client.post(url, json=body) for _ in range(n)))


def test_fifty_identical_concurrent_requests_make_one_provider_call(tmp_path: Path) -> None:
    with Server(tmp_path / "data", {"PIXELPIPE_PREVIEW_LATENCY_MS": "500"}) as srv:
        body = {"prompt": "fifty foxes", "seed": 5, "size": "128x128"}
        responses = asyncio.run(_burst(f"{srv.url}/v1/generations", body, 50))
        assert all(r.status_code in (200, 202) for r in responses), [r.text for r in responses]
        ids = {r.json()["id"] for r in responses if r.status_code == 202}
        assert len(ids) == 1
        follow_sse(f"{srv.url}/v1/generations/{ids.pop()}/events")
        assert metric(srv.url, SUBMISSIONS, 'provider="preview"') == 1


@pytest.mark.parametrize(
    "body,code,field",
    [
        ({"prompt": ""}, "invalid_request", "prompt"),
        ({"prompt": "x", "model": "nope"}, "invalid_request", "model"),
        ({"prompt": "x", "size": "3x3"}, "invalid_request", "size"),
        ({"prompt": "x", "seed": -5}, "invalid_request", "seed"),
        ({"prompt": "x", "format": "gif"}, "invalid_request", "format"),
        ({"prompt": "x", "surprise": 1}, "invalid_request", "surprise"),
        ({"prompt": "a beheading scene"}, "prompt_blocked", None),
    ],
)
def test_bad_input_gets_a_problem_and_writes_nothing(
    tmp_path: Path, server: Server, body: dict, code: str, field: str | None
) -> None:
    before = httpx.get(f"{server.url}/v1/generations", timeout=5).json()["data"]
    r = httpx.post(f"{server.url}/v1/generations", json=body, timeout=5)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == code and problem["detail"]
    if field:
        assert field in json.dumps(problem)
    assert httpx.get(f"{server.url}/v1/generations", timeout=5).json()["data"] == before


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with Server(tmp_path_factory.mktemp("srv")) as srv:
        yield srv


def test_sigkill_while_jobs_run_then_restart_completes_everything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"PIXELPIPE_PREVIEW_LATENCY_MS": "1500", "PIXELPIPE_LEASE_S": "2"}
    srv = Server(data, env).start()
    ids = []
    for i in range(12):
        r = httpx.post(
            f"{srv.url}/v1/generations",
            json={"prompt": f"crash test {i}", "seed": i, "size": "64x64"},
            timeout=5,
        )
        ids.append(r.json()["id"])
    srv.kill()  # SIGKILL: jobs are queued, submitted or waiting

    with Server(data, env, port=srv.port) as again:
        for job_id in ids:
            events = follow_sse(f"{again.url}/v1/generations/{job_id}/events", timeout=60)
            assert events[-1]["data"]["status"] == "succeeded", events[-1]
        jobs = [httpx.get(f"{again.url}/v1/generations/{i}", timeout=5).json() for i in ids]
    keys = {j["key"] for j in jobs}
    assert len(keys) == 12
    stored = [p for p in (data / "images" / "preview").rglob("*") if p.is_file()]
    assert len(stored) == 12  # each image stored once (content-addressed)
