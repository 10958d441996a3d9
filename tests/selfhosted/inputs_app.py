"""Helpers for the self-hosted edit tests: a real app with its embedded worker, driven over HTTP
like a user (upload, generate from the upload, wait, download the stored image)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from pixelpipe.api.app import create_app
from pixelpipe.fakes.server import serve_app
from pixelpipe.settings import load_settings

TERMINAL = ("succeeded", "failed", "canceled")


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def left_half_mask(size: tuple[int, int]) -> bytes:
    """OpenAI's convention (what /v1/images/edits and the page send): transparent = edit."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    return png(mask)


@asynccontextmanager
async def pixelpipe(tmp_path: Path, catalog: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a pixelpipe app (worker embedded) reading ``catalog`` as its catalog file."""
    path = tmp_path / "catalog.toml"
    path.write_text(catalog)
    settings = load_settings(data_dir=tmp_path / "data", catalog_path=path)
    app = create_app(settings, worker=True)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        yield client


async def upload(client: httpx.AsyncClient, data: bytes, name: str = "in.png") -> dict[str, Any]:
    resp = await client.post("/v1/uploads", files={"file": (name, data, "image/png")})
    assert resp.status_code in (200, 201), resp.text
    found: dict[str, Any] = resp.json()
    return found


async def generate(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/generations, then the job once it has ended."""
    resp = await client.post("/v1/generations", json=body)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    for _ in range(600):
        job: dict[str, Any] = (await client.get(f"/v1/generations/{job_id}")).json()
        if job["status"] in TERMINAL:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end: {job}")


async def stored_image(client: httpx.AsyncClient, job: dict[str, Any]) -> Image.Image:
    resp = await client.get(job["image"]["url"])
    assert resp.status_code == 200, resp.text
    return Image.open(io.BytesIO(resp.content)).convert("RGB")
