"""The OpenAI-compatible routes answer the middleware's refusals (401/403/429/413/422) in OpenAI's
error envelope; every other route keeps problem+json. Image uploads have their own size limit,
enforced while the body streams in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.security.conftest import Running, bearer, is_problem, running_app

UPLOAD_LIMIT = 200_000
CHUNK = 16_384


@pytest.fixture
async def srv(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with running_app(tmp_path / "data", max_upload_bytes=UPLOAD_LIMIT) as running:
        yield running


def is_openai_error(resp: httpx.Response) -> bool:
    body = resp.json()
    error = body.get("error") if isinstance(body, dict) else None
    return (
        resp.headers["content-type"].startswith("application/json")
        and isinstance(error, dict)
        and {"message", "type", "param", "code"} <= set(error)
    )


async def test_auth_refusals_use_the_envelope_only_on_the_openai_routes(srv: Running) -> None:
    read_only = await srv.key(scopes="read")
    async with srv.client() as c:
        for path in ("/v1/models", "/v1/models/preview"):
            r = await c.get(path)
            assert r.status_code == 401 and is_openai_error(r), path
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert "requires an API key" in r.json()["error"]["message"]
        for path in ("/v1/images/generations", "/v1/images/edits", "/v1/images/variations"):
            r = await c.post(path, json={"prompt": "a cat"}, headers=bearer(read_only))
            assert r.status_code == 403 and is_openai_error(r), path
            assert "lacks the 'generate' scope" in r.json()["error"]["message"]
        # the native API and the signed image route keep problem+json
        assert is_problem(await c.get("/v1/generations"))
        assert is_problem(await c.post("/v1/generations", json={"prompt": "a cat"}))
        assert is_problem(await c.get("/v1/images/generations?exp=1&sig=x"))


async def test_upload_limit_is_the_upload_setting_and_the_stream_is_not_read_past_it(
    srv: Running,
) -> None:
    sent = 0

    async def upload(chunks: int) -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(chunks):  # no Content-Length: counted while it streams in
            sent += CHUNK
            yield b"\x89" * CHUNK

    async with srv.client() as c:
        # well over the 64 KiB JSON limit, under the upload limit: the endpoint answers
        r = await c.post("/v1/images/variations", content=upload(8))
        assert r.status_code == 400 and is_openai_error(r)
        assert r.json()["error"]["code"] == "unsupported_endpoint"
        assert "POST /v1/images/generations" in r.json()["error"]["message"]
        r = await c.post("/v1/images/edits", content=upload(8))  # read, then: not multipart
        assert r.status_code == 400 and is_openai_error(r)
        assert "multipart/form-data" in r.json()["error"]["message"]

        sent = 0
        r = await c.post("/v1/images/variations", content=upload(1000))  # 16 MB offered
        assert r.status_code == 413 and is_openai_error(r)
        assert f"larger than {UPLOAD_LIMIT} bytes" in r.json()["error"]["message"]
        assert sent <= UPLOAD_LIMIT + 2 * CHUNK  # stopped reading at the limit

        declared = await c.post(
            "/v1/images/edits",
            content=b"x" * 10,
            headers={"content-length": str(UPLOAD_LIMIT + 1)},
        )
        assert declared.status_code == 413 and is_openai_error(declared)

        # the JSON routes keep their own 64 KiB limit
        r = await c.post("/v1/generations", content=upload(8))
        assert r.status_code == 413 and is_problem(r)


async def test_too_deep_json_on_the_openai_route_is_an_openai_error(srv: Running) -> None:
    async with srv.client() as c:
        r = await c.post(
            "/v1/images/generations",
            content=b"[" * 100 + b"]" * 100,
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 400 and is_openai_error(r)  # OpenAI answers bad input with 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "nested deeper" in r.json()["error"]["message"]


async def test_a_body_not_sent_as_json_starts_nothing(srv: Running) -> None:
    """A browser page elsewhere can POST text/plain or a form to a server open to local callers
    without a CORS preflight; only a JSON Content-Type (which needs one) is read. On both paths."""
    body = b'{"prompt": "a lighthouse", "size": "64x64"}'
    async with srv.client() as c:
        for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "text/json"):
            headers = {} if content_type is None else {"content-type": content_type}
            r = await c.post("/v1/images/generations", content=body, headers=headers)
            assert r.status_code == 400 and is_openai_error(r), content_type
            assert r.json()["error"]["type"] == "invalid_request_error"
            assert "Content-Type: application/json" in r.json()["error"]["message"]
        assert (await c.get("/v1/generations")).json()["data"] == []  # nothing was started
        for content_type in ("application/json", "application/json; charset=utf-8"):
            r = await c.post(
                "/v1/images/generations", content=body, headers={"content-type": content_type}
            )
            assert r.status_code == 200, (content_type, r.text)
