"""The gallery over HTTP (the real app, preview provider): favourites, boards, filters, the zip
and bulk delete, per API key."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx

from tests.security.conftest import bearer, is_problem, running_app

BODY = {"model": "preview", "size": "64x64", "seed": 7}


async def finished(c: httpx.AsyncClient, prompt: str, **extra: Any) -> dict[str, Any]:
    r = await c.post("/v1/generations", json={**BODY, "prompt": prompt, **extra})
    assert r.status_code in (200, 202), r.text
    job: dict[str, Any] = r.json()
    for _ in range(200):
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        await asyncio.sleep(0.05)
        job = (await c.get(f"/v1/generations/{job['id']}")).json()
    raise AssertionError(f"{job['id']} did not finish")


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [j["id"] for j in r.json()["data"]]


async def test_favourites_boards_and_filters(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app, app.client() as c:
        fox = await finished(c, "a red fox")
        owl = await finished(c, "an owl at night")
        cat = await finished(c, "a sleeping cat")
        assert (await c.put(f"/v1/favourites/{fox['id']}")).status_code == 204
        assert (await c.put(f"/v1/favourites/{fox['id']}")).status_code == 204  # idempotent
        r = await c.post("/v1/favourites", json={"ids": [owl["id"], fox["id"]]})
        assert r.json() == {"changed": 1}
        assert ids(await c.get("/v1/gallery", params={"favourite": "true"})) == [
            owl["id"],
            fox["id"],
        ]

        made = await c.post("/v1/boards", json={"name": "  Night  shots "})
        assert made.status_code == 201 and made.json()["name"] == "Night shots"
        again = await c.post("/v1/boards", json={"name": "Night shots"})
        assert again.status_code == 200 and again.json()["id"] == made.json()["id"]
        board = made.json()["id"]
        r = await c.post(f"/v1/boards/{board}/images", json={"ids": [owl["id"], cat["id"]]})
        assert r.json() == {"changed": 2}
        listed = (await c.get("/v1/boards")).json()["data"]
        assert [(b["name"], b["images"]) for b in listed] == [("Night shots", 2)]
        feed = (await c.get("/v1/gallery", params={"board": board})).json()["data"]
        assert [(j["id"], j["favourite"], j["boards"]) for j in feed] == [
            (cat["id"], False, [board]),
            (owl["id"], True, [board]),
        ]
        both = {"board": board, "favourite": "true"}
        assert ids(await c.get("/v1/gallery", params=both)) == [owl["id"]]
        r = await c.post(f"/v1/boards/{board}/images/remove", json={"ids": [cat["id"]]})
        assert r.json() == {"changed": 1}
        renamed = await c.patch(f"/v1/boards/{board}", json={"name": "Owls"})
        assert renamed.json()["name"] == "Owls" and renamed.json()["images"] == 1

        q = {"q": "fox", "model": "preview", "provider": "preview", "status": "succeeded"}
        assert ids(await c.get("/v1/gallery", params=q)) == [fox["id"]]
        oldest = await c.get("/v1/gallery", params={"sort": "oldest", "limit": 2})
        assert ids(oldest) == [fox["id"], owl["id"]]
        rest = {"sort": "oldest", "limit": 2, "cursor": oldest.json()["next_cursor"]}
        assert ids(await c.get("/v1/gallery", params=rest)) == [cat["id"]]
        today = fox["timings"]["created_at"][:10]
        assert len(ids(await c.get("/v1/gallery", params={"since": today, "until": today}))) == 3
        assert ids(await c.get("/v1/gallery", params={"until": "2001-01-01"})) == []
        assert ids(await c.get("/v1/gallery", params={"cost_min": "0.01"})) == []  # preview: free

        assert (await c.delete(f"/v1/boards/{board}")).status_code == 204
        assert (await c.delete(f"/v1/boards/{board}")).status_code == 204
        gone = await c.get("/v1/gallery", params={"board": board})
        assert gone.status_code == 404 and is_problem(gone)


async def test_bad_filters_say_what_to_send(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app, app.client() as c:
        for params, says in (
            ({"status": "done"}, "use one of queued"),
            ({"since": "yesterday"}, "YYYY-MM-DD"),
            ({"since": "2026-12-02", "until": "2026-12-01"}, "must be before until"),
            ({"cost_min": "-1"}, "0 or more"),
            ({"cost_min": "0.5", "cost_max": "0.1"}, "more than cost_max"),
            ({"cost_max": "abc"}, "not an amount of USD"),
            ({"sort": "price"}, "cost_desc"),
            ({"cursor": "nope"}, "pass next_cursor back unchanged"),
            ({"sort": "cost_desc", "cursor": "x:gen_1"}, "pass next_cursor back unchanged"),
            ({"model": "no such model!"}, "not a model name"),
            ({"favourite": "maybe"}, "favourite"),
        ):
            r = await c.get("/v1/gallery", params=params)
            assert r.status_code == 422 and is_problem(r), (params, r.text)
            assert says in r.json()["detail"], (params, r.json()["detail"])
        for body, says in (
            ({"ids": []}, "at least one"),
            ({"ids": ["nope"]}, "not generation ids"),
            ({"ids": [f"gen_{i:026d}" for i in range(1001)]}, "at most 1000"),
        ):
            for path in ("/v1/images/archive", "/v1/generations/delete", "/v1/favourites"):
                r = await c.post(path, json=body)
                assert r.status_code == 422 and says in r.json()["detail"], (path, r.text)
        nobody = "gen_0000000000000000000000zzzz"
        r = await c.put(f"/v1/favourites/{nobody}")
        assert r.status_code == 404 and nobody in r.json()["detail"]
        assert (await c.delete(f"/v1/favourites/{nobody}")).status_code == 204
        r = await c.post("/v1/boards", json={"name": "   "})
        assert r.status_code == 422 and "needs a name" in r.json()["detail"]


async def test_the_archive_has_the_images_and_their_metadata(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app, app.client() as c:
        first = await finished(c, "a lighthouse")
        harbour = await finished(c, "a harbour")
        missing = "gen_0000000000000000000000zzzz"
        r = await c.post("/v1/images/archive", json={"ids": [first["id"], harbour["id"], missing]})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert r.headers["content-disposition"].startswith('attachment; filename="pixelpipe-')
        zf = zipfile.ZipFile(io.BytesIO(r.content))
        assert zf.testzip() is None
        names = zf.namelist()
        assert names[-2:] == ["metadata.json", "metadata.csv"]
        meta = json.loads(zf.read("metadata.json"))
        assert meta["missing"] == [missing]
        by_id = {g["id"]: g for g in meta["generations"]}
        assert set(by_id) == {first["id"], harbour["id"]}
        for job in (first, harbour):
            row = by_id[job["id"]]
            assert row["prompt"] == job["request"]["prompt"] and row["seed"] == 7
            assert row["model"] == "preview" and row["provider"] == "preview"
            assert row["cost_usd"] == job["cost"]["usd"] and row["made_from"] == []
            stored = (await c.get(job["image"]["url"])).content
            assert zf.read(row["file"]) == stored
        rows = list(csv.DictReader(io.StringIO(zf.read("metadata.csv").decode())))
        assert {r["id"] for r in rows} == set(by_id)
        assert all(r["retry_of"] == "" and r["seed"] == "7" for r in rows)


async def test_bulk_delete_keeps_a_shared_image_and_each_keys_own(tmp_path: Path) -> None:
    async with running_app(tmp_path, host="0.0.0.0") as app:
        alice, bob = await app.key(name="alice"), await app.key(name="bob")
        async with app.client(headers=bearer(alice)) as a, app.client(headers=bearer(bob)) as b:
            one = await finished(a, "a shared dawn")
            hit = await finished(a, "a shared dawn")  # a cache hit: the same stored image
            assert hit["cached"] is True and hit["image"]["url"]
            mine = await finished(b, "bob's own")
            board = (await a.post("/v1/boards", json={"name": "Alice"})).json()["id"]
            await a.post(f"/v1/boards/{board}/images", json={"ids": [one["id"], hit["id"]]})
            await a.post("/v1/favourites", json={"ids": [one["id"]]})

            assert (await b.get(f"/v1/boards/{board}")).status_code == 404  # not bob's
            assert (await b.get("/v1/boards")).json()["data"] == []
            r = await b.post(f"/v1/boards/{board}/images", json={"ids": [mine["id"]]})
            assert r.status_code == 404
            assert (await b.get("/v1/favourites")).json()["data"] == []

            r = await b.post("/v1/generations/delete", json={"ids": [one["id"], mine["id"]]})
            assert r.status_code == 200, r.text
            assert r.json()["deleted"] == [mine["id"]] and list(r.json()["refused"]) == [one["id"]]

            r = await a.post("/v1/generations/delete", json={"ids": [one["id"]]})
            assert r.json()["deleted"] == [one["id"]]
            still = await a.get(f"/v1/generations/{hit['id']}")
            assert (await a.get(still.json()["image"]["url"])).status_code == 200  # shared: kept
            assert (await a.get(f"/v1/boards/{board}")).json()["images"] == 1
            assert (await a.get("/v1/favourites")).json()["data"] == []

            again = await a.post("/v1/generations/delete", json={"ids": [one["id"], hit["id"]]})
            assert again.json()["deleted"] == [one["id"], hit["id"]]  # idempotent
            assert again.json()["not_found"] == [] and again.json()["refused"] == {}
            assert (await a.get(still.json()["image"]["url"])).status_code == 404  # last user gone
