"""Event tokens: EventSource follows a job's events with auth on, and the token opens nothing else."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pixelpipe.security import event_tokens
from pixelpipe.security.keys import revoke_key, split_key
from tests.security.conftest import Running, bearer, is_problem, running_app

BODY = {"prompt": "a token for a heron", "model": "preview", "size": "64x64", "seed": 4}
REMOTE = ("10.1.2.3", 4000)  # auth is on for any peer beyond loopback


@pytest.fixture
async def srv(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with running_app(tmp_path / "data") as running:
        yield running


async def finished_job(c: httpx.AsyncClient, key: str) -> str:
    r = await c.post("/v1/generations", json=BODY, headers=bearer(key))
    assert r.status_code in (200, 202), r.text
    job_id = str(r.json()["id"])
    for _ in range(200):
        got = await c.get(f"/v1/generations/{job_id}", headers=bearer(key))
        if got.json()["status"] == "succeeded":
            return job_id
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not finish")


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def test_a_token_opens_that_jobs_events_without_a_header(srv: Running) -> None:
    key = await srv.key(scopes="generate,read")
    async with srv.client(client=REMOTE) as c:
        job_id = await finished_job(c, key)
        r = await c.post(f"/v1/generations/{job_id}/event-token", headers=bearer(key))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "event_token" and 0 < body["expires_in"] <= 300
        assert r.headers["cache-control"] == "no-store"
        assert body["url"].startswith(f"http://127.0.0.1:8000/v1/generations/{job_id}/events?")
        assert token_of(body["url"]) == body["token"]

        stream = await c.get(body["url"])  # no Authorization header, as EventSource sends it
        assert stream.status_code == 200, stream.text
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "event: status" in stream.text and '"succeeded"' in stream.text

        assert (await c.get(f"/v1/generations/{job_id}/events")).status_code == 401


async def test_expired_forged_and_other_job_tokens_get_401(srv: Running) -> None:
    key = await srv.key(scopes="generate,read")
    key_id = (split_key(key) or ("", ""))[0]
    secret = srv.settings.signing_key()
    async with srv.client(client=REMOTE) as c:
        job_id = await finished_job(c, key)
        other_id = "gen_01m8ymvhxw4axep080ex55atfs"
        good, _ = event_tokens.issue(job_id, key_id, secret, time.time())
        expired, _ = event_tokens.issue(job_id, key_id, secret, time.time() - 301)
        kid, exp, sig = good.split(".")
        cases = {
            "expired": (job_id, expired, "expired"),
            "forged signature": (job_id, f"{kid}.{exp}.{'A' * len(sig)}", "not valid"),
            "longer life": (job_id, f"{kid}.{int(exp) + 3600}.{sig}", "not valid"),
            "another key": (job_id, f"{'0' * len(kid)}.{exp}.{sig}", "not valid"),
            "another job": (other_id, good, "not valid"),
            "malformed": (job_id, "nonsense", "malformed"),
            "other secret": (
                job_id,
                event_tokens.issue(job_id, key_id, b"x" * 48, time.time())[0],
                "not valid",
            ),
        }
        for what, (target, token, says) in cases.items():
            r = await c.get(f"/v1/generations/{target}/events", params={"token": token})
            assert r.status_code == 401, what
            assert is_problem(r) and says in r.json()["detail"], (what, r.json())
            assert token not in r.text, what  # never echoed
        ok = await c.get(f"/v1/generations/{job_id}/events", params={"token": good})
        assert ok.status_code == 200


async def test_a_token_is_refused_on_every_other_route(srv: Running) -> None:
    key = await srv.key(scopes="generate,read,admin")
    async with srv.client(client=REMOTE) as c:
        job_id = await finished_job(c, key)
        r = await c.post(f"/v1/generations/{job_id}/event-token", headers=bearer(key))
        token = r.json()["token"]
        for method, path in [
            ("GET", f"/v1/generations/{job_id}"),
            ("GET", "/v1/generations"),
            ("POST", f"/v1/generations/{job_id}/cancel"),
            ("POST", f"/v1/generations/{job_id}/event-token"),
            ("GET", "/v1/events"),
            ("GET", "/v1/usage"),
            ("GET", "/v1/models"),
            ("POST", "/v1/generations"),
        ]:
            resp = await c.request(method, path, params={"token": token}, json=BODY)
            assert resp.status_code == 401, (method, path, resp.status_code)
        # nor as a bearer key
        r = await c.get(f"/v1/generations/{job_id}", headers=bearer(token))
        assert r.status_code == 401


async def test_revoking_the_key_stops_its_tokens_on_the_next_connect(srv: Running) -> None:
    key = await srv.key(scopes="generate,read")
    async with srv.client(client=REMOTE) as c:
        job_id = await finished_job(c, key)
        url = (await c.post(f"/v1/generations/{job_id}/event-token", headers=bearer(key))).json()[
            "url"
        ]
        assert (await c.get(url)).status_code == 200
        await revoke_key(srv.svc.db, (split_key(key) or ("", ""))[0])
        r = await c.get(url)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_a_token_needs_the_read_scope(srv: Running) -> None:
    admin = await srv.key(scopes="generate,read")
    writer = await srv.key(scopes="generate", name="writer")
    async with srv.client(client=REMOTE) as c:
        job_id = await finished_job(c, admin)
        r = await c.post(f"/v1/generations/{job_id}/event-token", headers=bearer(writer))
        assert r.status_code == 403 and r.json()["required_scope"] == "read"
        missing = await c.post("/v1/generations/gen_nope/event-token", headers=bearer(admin))
        assert missing.status_code == 404
