"""Hostile input at the HTTP boundary: sizes, nesting, control characters, ids, paths, headers,
and the signed image URLs (tampered, expired, traversal)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.delivery.signing import sign
from tests.security.conftest import Running, is_problem, running_app

BODY = {"prompt": "a lighthouse at dusk", "model": "preview", "size": "64x64", "seed": 3}


@pytest.fixture
async def srv(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with running_app(tmp_path / "data", delivery="public") as running:
        yield running


async def test_oversized_bodies_get_413_declared_or_streamed(srv: Running) -> None:
    big = b'{"prompt": "' + b"a" * 70_000 + b'"}'
    async with srv.client() as c:
        r = await c.post(
            "/v1/generations", content=big, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413 and is_problem(r)
        assert r.json()["code"] == "payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(40):  # no Content-Length: counted while it streams in
                yield b"x" * 4096

        r = await c.post("/v1/generations", content=chunks())
        assert r.status_code == 413 and is_problem(r)
        # just under the limit is parsed normally (and refused for the right reason)
        ok_size = b'{"prompt": "' + b"a" * 60_000 + b'"}'
        r = await c.post(
            "/v1/generations", content=ok_size, headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        assert await srv.svc.store.list_jobs() == []


async def test_deep_json_is_refused_before_parsing(srv: Running) -> None:
    deep = b"[" * 30_000 + b"]" * 30_000
    nested_prompt = b'{"prompt": "x", "model": {"a":' * 40 + b"1" + b"}" * 40
    async with srv.client() as c:
        for body in (deep, nested_prompt):
            r = await c.post(
                "/v1/generations", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 422 and is_problem(r), r.text
            assert "nested deeper" in r.json()["detail"]
        # brackets inside strings do not count
        quoted = {**BODY, "prompt": "[[[[" * 20 + " a fox"}
        assert (await c.post("/v1/estimates", json=quoted)).status_code == 200


@pytest.mark.parametrize(
    "prompt", ["a fox\x00", "a fox\x1b[31m", "a\u202efox", "a fox\x7f", "\u200b\u200b"]
)
async def test_control_characters_in_prompts_are_refused(srv: Running, prompt: str) -> None:
    async with srv.client() as c:
        r = await c.post("/v1/generations", json={**BODY, "prompt": prompt})
    assert r.status_code == 422 and is_problem(r), r.text


@pytest.mark.parametrize(
    "job_id",
    [
        "..%2F..%2Fpixelpipe.db",
        "gen_../../etc/passwd",
        "gen_%00",
        "x" * 500,
        "GEN_01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ],
)
async def test_job_ids_are_validated_never_used_as_paths(srv: Running, job_id: str) -> None:
    async with srv.client() as c:
        for path in (f"/v1/generations/{job_id}", f"/v1/generations/{job_id}/events"):
            r = await c.get(path)
            assert r.status_code in (404, 422) and is_problem(r), (path, r.status_code)


async def _one_image(srv: Running) -> dict[str, object]:
    async with srv.client() as c:
        r = await c.post("/v1/generations", json=BODY)
        job_id = r.json()["id"]
        for _ in range(200):
            job = (await c.get(f"/v1/generations/{job_id}")).json()
            if job["status"] == "succeeded":
                return dict(job)
            time.sleep(0.02)
    raise AssertionError("preview job did not finish")


async def test_signed_urls_tampered_expired_or_traversing_get_403(tmp_path: Path) -> None:
    async with running_app(tmp_path / "signed") as srv:
        job = await _one_image(srv)
        url = str(job["image"]["url"])  # type: ignore[index]
        path, _, query = url.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&"))
        key = path.removeprefix("/v1/images/")
        secret = srv.settings.signing_key()
        past = int(time.time()) - 10
        async with srv.client() as c:
            ok = await c.get(url)
            assert ok.status_code == 200 and ok.content[:4] == b"RIFF"
            attempts = {
                "tampered sig": {**params, "sig": params["sig"][:-2] + "AA"},
                "extended exp": {**params, "exp": str(int(params["exp"]) + 3600)},
                "expired": {"exp": str(past), "sig": sign(key, past, secret)},
                "no sig": {"exp": params["exp"], "sig": ""},
            }
            for what, query_params in attempts.items():
                r = await c.get(path, params=query_params)
                assert r.status_code == 403 and is_problem(r), what
                assert r.json()["code"] == "delivery_forbidden", what
            other = path.replace(".webp", ".png")
            r = await c.get(other, params=params)  # a signature is for one key only
            assert r.status_code == 403
            # even a correctly signed traversal key cannot leave the storage root
            for evil in ("../secret.key", "preview/../../secret.key", ".secret", "a//b"):
                exp = int(time.time()) + 600
                r = await c.get(
                    f"/v1/images/{evil}", params={"exp": exp, "sig": sign(evil, exp, secret)}
                )
                assert r.status_code in (404, 422), (evil, r.status_code)
                assert secret not in r.content


@pytest.mark.parametrize(
    "path",
    [
        "/i/../secret.key",
        "/i/..%2fsecret.key",
        "/i/%2e%2e/secret.key",
        "/i/%2e%2e%2fsecret.key",
        "/i/preview/..%2f..%2fsecret.key",
        "/i/.%2e/pixelpipe.db",
        "/i//etc/passwd",
        "/i/%2fetc%2fpasswd",
        "/i/preview%5c..%5c..%5csecret.key",
    ],
)
async def test_public_delivery_cannot_escape_the_storage_root(srv: Running, path: str) -> None:
    secret = srv.settings.signing_key()
    async with srv.client() as c:
        r = await c.get(path)
    assert r.status_code in (404, 422), (path, r.status_code)
    assert secret not in r.content and b"SQLite" not in r.content and b"root:" not in r.content


async def test_security_headers_everywhere_and_pages_keep_their_csp(srv: Running) -> None:
    job = await _one_image(srv)
    async with srv.client() as c:
        answers = {
            "json": await c.get("/v1/models"),
            "problem": await c.get("/v1/generations/nope"),
            "image": await c.get(str(job["image"]["url"])),  # type: ignore[index]
            "413": await c.post("/v1/generations", content=b"x" * 70_000),
            "page": await c.get("/"),
            "docs": await c.get("/docs"),
        }
    for what, r in answers.items():
        assert r.headers["x-content-type-options"] == "nosniff", what
        assert r.headers["x-frame-options"] == "DENY", what
        assert "referrer-policy" in r.headers, what
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], what
    assert answers["json"].headers["content-security-policy"].startswith("default-src 'none'")
    page_csp = answers["page"].headers["content-security-policy"]
    assert "script-src 'self'" in page_csp and "unsafe-inline" not in page_csp
    assert "set-cookie" not in answers["page"].headers  # no cookies: nothing for CSRF to ride on
    assert answers["image"].headers["content-type"] == "image/webp"


async def test_no_secret_reaches_the_browser(tmp_path: Path) -> None:
    env = {
        "replicate_api_token": "r8_SECRET_TOKEN_123456",
        "openai_api_key": "sk-SECRET-OPENAI-9876",
    }
    async with running_app(tmp_path / "d", embedded_worker=False, **env) as srv:
        signing = srv.settings.signing_key()
        async with srv.client() as c:
            pages = [await c.get(p) for p in ("/", "/gallery", "/compare", "/openapi.json")]
            pages += [await c.get("/v1/models"), await c.get("/readyz")]
    for r in pages:
        for secret in (b"r8_SECRET_TOKEN_123456", b"sk-SECRET-OPENAI-9876", signing):
            assert secret not in r.content, r.url


async def test_an_idempotency_key_that_attached_to_an_inflight_job_keeps_it(tmp_path: Path) -> None:
    """Found by the fault run: key K2 attached (single-flight) to K1's job; once that finished,
    a retry with K2 became a new cache-hit job — two ids for one key. K2 now maps to K1's job."""
    async with running_app(tmp_path / "idem", preview_latency_ms=400) as srv, srv.client() as c:
        one = await c.post("/v1/generations", json=BODY, headers={"Idempotency-Key": "k1"})
        two = await c.post("/v1/generations", json=BODY, headers={"Idempotency-Key": "k2"})
        assert one.json()["id"] == two.json()["id"]
        for _ in range(100):
            if (await c.get(f"/v1/generations/{one.json()['id']}")).json()["status"] == "succeeded":
                break
            await asyncio.sleep(0.05)
        again = await c.post("/v1/generations", json=BODY, headers={"Idempotency-Key": "k2"})
        assert again.json()["id"] == one.json()["id"]
        other = {**BODY, "prompt": "something else"}
        reused = await c.post("/v1/generations", json=other, headers={"Idempotency-Key": "k2"})
        assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
        fresh = await c.post("/v1/generations", json=BODY, headers={"Idempotency-Key": "k3"})
        assert fresh.json()["cached"] is True and fresh.json()["id"] != one.json()["id"]


async def test_a_locked_database_is_a_503_with_retry_after(
    srv: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the fault run: 'database is locked' used to surface as a 500."""
    from sqlalchemy.exc import OperationalError

    async def locked(**_: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    monkeypatch.setattr(srv.svc.store, "list_jobs", locked)
    async with srv.client() as c:
        r = await c.get("/v1/generations")
    assert r.status_code == 503 and is_problem(r)
    assert r.json()["code"] == "database_unavailable" and r.headers["retry-after"] == "1"
