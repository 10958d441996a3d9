"""Lineage over the API: an edit of a gallery image shows its inputs and their source generation;
deleting the source keeps the input (and the record of where it came from)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from pixelpipe.api.schemas import GenerationPublic
from tests.inputs.images import picture
from tests.security.conftest import running_app

BODY = {"prompt": "a lighthouse at dusk", "seed": 7, "size": "64x64", "model": "preview"}


async def _done(c: httpx.AsyncClient, answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code in (200, 202), answer.text
    for _ in range(200):
        job: dict[str, Any] = (await c.get(f"/v1/generations/{answer.json()['id']}")).json()
        if job["status"] == "succeeded":
            return job
        assert job["status"] not in ("failed", "canceled", "timed_out"), job
        await asyncio.sleep(0.05)
    raise AssertionError("did not finish")


async def test_an_edit_shows_its_inputs_with_their_source_and_survives_its_deletion(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path) as app, app.client() as c:
        source = await _done(c, await c.post("/v1/generations", json=BODY))
        assert source["inputs"] == [] and "images" not in source["request"]
        upload = await c.post("/v1/uploads", files={"file": ("m.png", picture(), "image/png")})
        mask = upload.json()
        by_url = {**BODY, "images": [source["image"]["url"]], "mask": mask["id"]}
        edited = await _done(c, await c.post("/v1/generations", json=by_url))
        assert edited["key"].startswith("k2:")
        (image, masked) = edited["inputs"]
        assert image["role"] == "image" and image["source_generation"] == source["id"]
        url = masked.pop("url")  # delivered like an image: signed, under /v1/images/inputs/
        assert url.startswith("http://") and f"/v1/images/inputs/{mask['digest'][7:]}." in url
        assert "sig=" in url
        assert masked == {
            "role": "mask",
            "digest": mask["digest"],
            "id": mask["id"],
            "source_generation": None,
        }
        masked["url"] = url
        assert edited["request"]["images"] == [image["digest"]]
        assert GenerationPublic.model_validate(edited).model_dump(mode="json") == edited
        # the same edit named by the generation id is the same input: a cache hit
        by_id = {**BODY, "images": [source["id"]], "mask": mask["id"]}
        hit = await c.post("/v1/generations", json=by_id)
        assert hit.status_code == 200 and hit.json()["cached"] is True

        assert (await c.delete(f"/v1/generations/{source['id']}")).status_code == 204
        again = (await c.get(f"/v1/generations/{edited['id']}")).json()
        assert again["inputs"][0]["source_generation"] == source["id"]
        key = f"inputs/{image['digest'][7:]}.webp"
        assert await app.svc.storage.head(key) is not None  # the input is its own object
        reuse = {**BODY, "images": [image["id"]], "seed": 8}
        assert (await _done(c, await c.post("/v1/generations", json=reuse)))["inputs"]
