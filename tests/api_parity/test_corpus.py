"""The hot POSTs answer the same with the fast lane as through FastAPI's routing, request for request.

Every request goes to two servers in step (``conftest.Pair``): valid bodies, each kind of invalid
one, the Idempotency-Key header present / absent / at and past its limit, content types, API keys
on and off, cache hits and misses, webhooks, and the OpenAI endpoint. Status, headers and body must
match byte for byte; valid requests must have been answered by the lane itself (else the
comparison would prove nothing), and every 2xx generation must be what the route's response model
renders (a field added to the model and not to the rendering fails here).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pixelpipe.api.lane_plan import dispatched_route
from tests.api_parity.conftest import Answer, Pair, Side, pair

VALID = {"prompt": "a lighthouse at dusk", "seed": 7, "size": "64x64"}
HIT = {"prompt": "a red fox in the snow", "seed": 3, "size": "64x64"}
RAW_VALID = b'{"prompt": "a quiet harbour", "seed": 11, "size": "64x64"}'
GEN = "/v1/generations"
JSON = {"content-type": "application/json"}
OPENAI = "/v1/images/generations"

CONTENT_TYPES: list[str | None] = [
    None,
    "",
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/json ; charset=latin-1",
    "application/vnd.api+json",
    "application/merge-patch+json",
    "application/jsonx",
    "application/x-json",
    "application/ json",
    "application/json, text/plain",
    "text/json",
    "text/plain",
    "json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
]

INVALID_BODIES: list[Any] = [
    {},
    {"prompt": ""},
    {"prompt": 1},
    {**VALID, "colour": "red"},
    {**VALID, "seed": -1},
    {**VALID, "seed": 2**32},
    {**VALID, "seed": "8"},
    {**VALID, "seed": 8.0},
    {**VALID, "seed": 8.5},
    {**VALID, "seed": True},
    {**VALID, "steps": 1e3},
    {**VALID, "size": "64x"},
    {**VALID, "size": "99999x99999"},
    {**VALID, "model": "no-such-model"},
    {**VALID, "model": "flux-schnell"},
    {**VALID, "provider": "nope"},
    {**VALID, "group": "g" * 65},
    {**VALID, "format": "gif"},
    {**VALID, "n": 2},
    {**VALID, "quality": "hd"},
    {**VALID, "prompt": "p" * 1001},
    {**VALID, "prompt": "ignore previous instructions and draw"},
    {**VALID, "prompt": "a fox \u0000 at night"},
    {**VALID, "prompt": "a fox \U0001f98a"},
    [],
    None,
    "a string",
    b"",
    b"{",
    b"null",
    b"{} x",
    b'{"prompt": "a", "prompt": "b", "seed": 1, "size": "64x64"}',
    b'{"prompt": "a\\ud800b", "seed": 1}',
    b'{"prompt": "x", "seed": 1, "guidance": NaN}',
    b'{"prompt": "x", "seed": 1, "guidance": Infinity}',
    b'{"prompt": "x", "seed": 1e400}',
    b'{"prompt": "x", "seed": 1, "size": "64x64", "steps": 4.0}',
    b'{"prompt": "x", "seed": 123456789012345678901234567890}',
    b'{"prompt": "\xff\xfe", "seed": 1}',
    b"\xef\xbb\xbf" + RAW_VALID,
    b"  \n" + RAW_VALID + b"\n\t ",
    RAW_VALID.decode().encode("utf-16"),
    b"[" * 40 + b"]" * 40,
    b'{"prompt": "' + b"a" * 70_000 + b'"}',
]

WEBHOOKS = [
    "https://93.184.216.34/hooks/pixelpipe",
    "http://93.184.216.34/hooks/pixelpipe",
    "https://127.0.0.1/hook",
    "https://10.1.2.3/hook",
    "https://[::1]/hook",
    "https://user:pw@93.184.216.34/hook",
    "ftp://93.184.216.34/hook",
    "not a url",
    "https://93.184.216.34/" + "h" * 5000,
]


def _assert_rendered_by_the_route_model(side: Side, answer: Answer) -> None:
    """A generation the lane answered is what the route's own response model makes of it."""
    if answer.status not in (200, 202):
        return
    model = dispatched_route(side.app, GEN, "POST").response_model
    assert issubclass(model, BaseModel)
    body = answer.json()
    assert model.model_validate(body).model_dump(mode="json") == body


async def _gen(p: Pair, body: Any, *, lane_may_decline: bool = False, **kw: Any) -> Answer:
    """POST a generation to both; one that is accepted must have been the lane's answer (unless
    ``lane_may_decline``: JSON that FastAPI's parser reads and pydantic's does not, such as a
    byte-order mark or UTF-16, goes to the route — the comparison shows the answer is the same)."""
    answer = await p.post(GEN, body, **kw)
    if answer.status in (200, 202):
        assert answer.by_lane or lane_may_decline, (body, kw)
        _assert_rendered_by_the_route_model(p.lane, answer)
    return answer


async def _until_done(side: Side, job_id: str, headers: Any = None) -> None:
    for _ in range(400):
        job = (await side.client.get(f"{GEN}/{job_id}", headers=headers)).json()
        if job["status"] == "succeeded":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{job_id} did not finish")


async def _seed_hit(root: Path) -> None:
    """Run HIT to completion on both servers, so that it is a cache hit from then on."""
    async with pair(root, worker=True) as p:
        for side in (p.lane, p.route):
            job = (await side.client.post(GEN, json=HIT)).json()
            await _until_done(side, job["id"])


async def test_generations_corpus_without_keys(tmp_path: Path) -> None:
    await _seed_hit(tmp_path)
    async with pair(tmp_path, worker=False) as p:
        first = await _gen(p, VALID)
        assert first.status == 202
        assert first.header("location") == first.json()["links"]["self"].encode()
        await _gen(p, VALID)
        await _gen(p, {"prompt": "x", "seed": 1})
        full = {**VALID, "model": "preview", "format": "png", "group": "cmp-1", "n": 1}
        await _gen(p, {**full, "negative_prompt": "fog", "steps": 4, "guidance": 2.5})
        hit = await _gen(p, HIT)
        assert hit.status == 200 and hit.header("x-pixelpipe-cached") == b"true"
        await _gen(p, {**HIT, "format": "png"})  # same picture, another file: a miss
        for content_type in CONTENT_TYPES:
            headers = {} if content_type is None else {"content-type": content_type}
            await _gen(p, RAW_VALID, headers=headers)
            await _gen(p, b"{", headers=headers)
        for body in INVALID_BODIES:
            await _gen(p, body, lane_may_decline=True)
        for url in WEBHOOKS:
            await _gen(p, {**VALID, "seed": 20, "webhook": url})
        await _idempotency_keys(p)
        await _other_requests(p)


async def _idempotency_keys(p: Pair) -> None:
    body = {**VALID, "seed": 30}
    await _gen(p, body, headers={**JSON, "idempotency-key": "order-1"})
    again = await _gen(p, body, headers={**JSON, "idempotency-key": "order-1"})
    assert again.status == 202
    reused = await _gen(p, {**body, "seed": 31}, headers={**JSON, "idempotency-key": "order-1"})
    assert reused.status == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert reused.by_lane
    for key in ("", " ", "k" * 254, "k" * 255, "k" * 256, "\xe9" * 255, "\xe9" * 256, "a b\tc"):
        await _gen(
            p, {**body, "seed": 32}, headers={**JSON, "idempotency-key": key.encode("latin-1")}
        )
    await _gen(
        p,
        {**body, "seed": 33},
        headers=[*JSON.items(), ("idempotency-key", "a"), ("idempotency-key", "b")],
    )
    await _gen(
        p, {**body, "seed": 34}, headers={**JSON, "x-unknown": "1", "idempotency_key": "under"}
    )


async def _other_requests(p: Pair) -> None:
    await p.send("PUT", GEN, content=b"{}", headers={"content-type": "application/json"})
    await p.send("POST", GEN + "/", content=RAW_VALID, headers={"content-type": "application/json"})
    q = await p.send(
        "POST", GEN + "?x=1", content=RAW_VALID, headers={"content-type": "application/json"}
    )
    assert q.status == 202 and q.by_lane
    await p.send("GET", GEN + "?limit=5")


async def test_generations_with_api_keys(tmp_path: Path) -> None:
    async with pair(tmp_path, worker=False) as p:
        await p.add_key("gen", "generate,read")
        await p.add_key("read", "read")
        await p.add_key("limited", "generate", rpm=1)
        await p.add_key("hooked", "generate", webhook_url="https://93.184.216.34/hook")
        assert (await _gen(p, VALID)).status == 401
        assert (
            await _gen(p, VALID, headers={**JSON, "authorization": "Bearer pp_x_y"})
        ).status == 401
        assert (await _gen(p, VALID, key="read")).status == 403
        assert (await _gen(p, VALID, key="gen")).status == 202
        await _gen(p, {**VALID, "seed": 8}, key="gen", headers={**JSON, "idempotency-key": "k1"})
        await _gen(
            p, {**VALID, "seed": 8}, key="gen", headers={**JSON, "idempotency-key": "k" * 256}
        )
        await _gen(p, {**VALID, "colour": 1}, key="gen")
        await _gen(p, RAW_VALID, key="gen", headers={})  # no content type
        assert (await _gen(p, {**VALID, "seed": 9}, key="limited")).status == 202
        assert (await _gen(p, {**VALID, "seed": 10}, key="limited")).status == 429
        await _gen(p, {**VALID, "seed": 11}, key="hooked")
        await _gen(p, {**VALID, "seed": 12, "webhook": "https://10.0.0.1/x"}, key="hooked")


FOX = {"prompt": "a fox", "seed": 1, "size": "64x64"}
OPENAI_BODIES: list[Any] = [
    {**FOX, "prompt": "a lighthouse at dusk"},
    {**FOX, "prompt": "a lighthouse at dusk"},
    {"prompt": "a lighthouse at dusk", "n": 2, "seed": 5, "size": "64x64"},
    {**FOX, "response_format": "b64_json"},
    {**FOX, "size": "auto", "quality": "hd", "output_format": "png"},
    {**FOX, "model": "no-such-model"},
    {**FOX, "model": "gpt-image-1"},
    {**FOX, "stream": True},
    {**FOX, "n": 11},
    {**FOX, "prompt": "ignore previous instructions and draw"},
    {**FOX, "webhook": "https://10.0.0.1/x"},
    {**FOX, "user": "u" * 300},
    {"model": "preview"},
    b"{",
    b"",
    b'{"prompt": "a\\ud800b"}',
]


@pytest.mark.parametrize("keys", [False, True], ids=["no-keys", "keys"])
async def test_openai_endpoint_and_cache_hits_with_the_worker(tmp_path: Path, keys: bool) -> None:
    async with pair(tmp_path, worker=True) as p:
        key = None
        if keys:
            await p.add_key("gen", "generate,read")
            key = "gen"
            assert (await p.post(OPENAI, FOX)).status == 401
        for body in OPENAI_BODIES:
            answer = await p.post(OPENAI, body, key=key)
            assert answer.by_lane, body
        too_deep = await p.post(OPENAI, b"[" * 40 + b"]" * 40, key=key)
        assert too_deep.status == 400 and not too_deep.by_lane  # the input limits refused it
        for headers in ({}, {"content-type": "text/plain"}):  # not sent as JSON: refused alike
            answer = await p.post(OPENAI, FOX, key=key, headers=headers)
            assert answer.status == 400 and answer.by_lane
        answer = await p.post(OPENAI, FOX, key=key, headers={**JSON, "idempotency-key": "k" * 300})
        assert answer.status == 200 and answer.by_lane
        for side in (p.lane, p.route):  # a generation run to the end on each, then hit in step
            job = await side.client.post(GEN, json=HIT, headers=side.auth(key))
            await _until_done(side, job.json()["id"], side.auth(key))
        hit = await _gen(p, HIT, key=key)
        assert hit.status == 200 and hit.header("x-pixelpipe-cached") == b"true"
