"""DELETE /v1/generations/{id}: the job goes, a shared image stays, the ledger keeps its history."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from pixelpipe.jobs.model import ImageRecord
from tests.security.conftest import Running, bearer, is_problem, running_app

BODY = {"prompt": "a lighthouse at dusk", "model": "preview", "size": "64x64", "seed": 7}


def _objects(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


async def _finished(c: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await c.post("/v1/generations", json=body)
    assert r.status_code in (200, 202), r.text
    job: dict[str, Any] = r.json()
    for _ in range(200):
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        await asyncio.sleep(0.05)
        job = (await c.get(f"/v1/generations/{job['id']}")).json()
    raise AssertionError(f"{job['id']} did not finish")


async def test_delete_removes_the_job_and_its_unshared_image_but_not_the_ledger(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path) as app, app.client() as c:
        job = await _finished(c, BODY)
        image_url = job["image"]["url"]
        assert (await c.get(image_url)).status_code == 200
        assert _objects(tmp_path / "images")
        entries = await app.svc.ledger.entries(job["id"])  # type: ignore[attr-defined]
        assert entries

        r = await c.delete(f"/v1/generations/{job['id']}")
        assert r.status_code == 204 and r.content == b""

        gone = await c.get(f"/v1/generations/{job['id']}")
        assert gone.status_code == 404 and is_problem(gone)
        listed = (await c.get("/v1/generations")).json()["data"]
        assert job["id"] not in {j["id"] for j in listed}
        assert _objects(tmp_path / "images") == set()  # image and thumbnail
        assert await app.svc.store.find_image(job["key"]) is None
        assert (await c.get(image_url)).status_code == 404
        # money history stays: the entries of the deleted job are all still there
        assert await app.svc.ledger.entries(job["id"]) == entries  # type: ignore[attr-defined]

        again = await c.delete(f"/v1/generations/{job['id']}")  # idempotent
        assert again.status_code == 204

        # the same request later is generated again, not served from a deleted image
        fresh = await _finished(c, BODY)
        assert fresh["status"] == "succeeded" and fresh["cached"] is False
        assert (await c.get(fresh["image"]["url"])).status_code == 200


async def test_unknown_ids_answer_a_problem_404(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app, app.client() as c:
        for job_id in ("gen_00000000000000000000000000", "nonsense"):
            r = await c.delete(f"/v1/generations/{job_id}")
            assert r.status_code == 404 and is_problem(r), r.text
            assert r.json()["code"] == "not_found"


async def test_an_image_shared_with_a_cache_hit_survives_until_its_last_job_goes(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path) as app, app.client() as c:
        first = await _finished(c, BODY)
        hit = await _finished(c, BODY)
        assert hit["cached"] is True and hit["image"]["url"] == first["image"]["url"]
        stored = _objects(tmp_path / "images")

        assert (await c.delete(f"/v1/generations/{first['id']}")).status_code == 204
        assert _objects(tmp_path / "images") == stored  # the cache hit still shows it
        shown = await c.get(hit["image"]["url"])
        assert shown.status_code == 200 and shown.content
        # and the image is still the cache's: a third request is a hit too
        third = await _finished(c, BODY)
        assert third["cached"] is True

        for job in (hit, third):
            assert (await c.delete(f"/v1/generations/{job['id']}")).status_code == 204
        assert _objects(tmp_path / "images") == set()


async def test_a_cache_hit_racing_a_delete_never_points_at_a_deleted_image(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path) as app, app.client() as c:
        job = await _finished(c, BODY)
        record = await app.svc.store.find_image(job["key"])
        assert record is not None
        assert (await c.delete(f"/v1/generations/{job['id']}")).status_code == 204
        # another process still remembers the image (its in-memory index): its next hit must
        # find the image gone and generate it again instead of serving a deleted object
        _remember(app, record)
        again = await _finished(c, BODY)
        assert again["cached"] is False and again["status"] == "succeeded"
        assert (await c.get(again["image"]["url"])).status_code == 200


def _remember(app: Running, record: ImageRecord) -> None:
    app.svc.store._images[record.content_key] = record


async def test_a_running_job_is_not_deleted(tmp_path: Path) -> None:
    async with running_app(tmp_path, preview_latency_ms=3000) as app, app.client() as c:
        r = await c.post("/v1/generations", json={**BODY, "seed": 8})
        job_id = r.json()["id"]
        r = await c.delete(f"/v1/generations/{job_id}")
        assert r.status_code == 409 and is_problem(r)
        assert "cancel it first" in r.json()["detail"]
        assert (await c.post(f"/v1/generations/{job_id}/cancel")).status_code == 200
        assert (await c.delete(f"/v1/generations/{job_id}")).status_code == 204


async def test_keyed_callers_delete_only_their_own_jobs(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app:
        mine, other = await app.key(name="mine"), await app.key(name="other")
        reader, admin = await app.key("read", name="reader"), await app.key("admin", name="adm")
        async with app.client(headers=bearer(mine)) as c:
            job = await _finished(c, {**BODY, "seed": 9})
            second = await _finished(c, {**BODY, "seed": 10})
        url = f"/v1/generations/{job['id']}"
        async with app.client() as anonymous:
            assert (await anonymous.delete(url)).status_code == 401
        async with app.client(headers=bearer(reader)) as c:
            r = await c.delete(url)
            assert r.status_code == 403 and "'generate' scope" in r.json()["detail"]
        async with app.client(headers=bearer(other)) as c:
            r = await c.delete(url)
            assert r.status_code == 403 and is_problem(r)
            assert "another API key" in r.json()["detail"]
        async with app.client(headers=bearer(mine)) as c:
            assert (await c.delete(url)).status_code == 204
        async with app.client(headers=bearer(admin)) as c:
            assert (await c.delete(f"/v1/generations/{second['id']}")).status_code == 204


async def test_jobs_from_before_keys_are_deleted_by_an_admin_key_only(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app:
        async with app.client() as c:  # auth is off: no key exists yet
            job = await _finished(c, {**BODY, "seed": 11})
        mine, admin = await app.key(name="mine"), await app.key("admin", name="adm")
        url = f"/v1/generations/{job['id']}"
        async with app.client(headers=bearer(mine)) as c:
            r = await c.delete(url)
            assert r.status_code == 403 and "without a key" in r.json()["detail"]
            assert "an admin key" in r.json()["detail"]
        async with app.client(headers=bearer(admin)) as c:
            assert (await c.delete(url)).status_code == 204


async def test_openapi_documents_delete_with_problem_json(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app, app.client() as c:
        doc = (await c.get("/openapi.json")).json()
    op = doc["paths"]["/v1/generations/{job_id}"]["delete"]
    assert "204" in op["responses"]
    for status in ("403", "404", "409"):
        assert "application/problem+json" in op["responses"][status]["content"]
