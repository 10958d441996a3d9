"""One URL rule: the API answers absolute URLs (``PIXELPIPE_PUBLIC_URL``, else the request's base);
a run with no server (``Pipeline``, ``pixelpipe generate``) names the stored file, never a server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from starlette.requests import Request

from pixelpipe.api.urls import scope_base
from pixelpipe.pipeline import Pipeline
from pixelpipe.settings import Settings
from tests.security.conftest import running_app
from tests.support.serve import CLI

BODY = {"prompt": "a url for a heron", "model": "preview", "size": "64x64", "seed": 8}


def urls_in(value: Any) -> list[str]:
    """Every URL-ish string of a generation (image URLs and links)."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str) and (k.endswith("url") or k in ("self", "events", "cancel")):
                found.append(v)
            else:
                found += urls_in(v)
    elif isinstance(value, list):
        for v in value:
            found += urls_in(v)
    return found


def sse_jobs(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[5:])["job"]
        for line in text.splitlines()
        if line.startswith("data:") and '"job"' in line
    ]


async def answers(c: httpx.AsyncClient) -> list[Any]:
    """POST (fast lane), GET, list (gallery feed) and the SSE payloads of one finished job."""
    first = await c.post("/v1/generations", json=BODY)
    assert first.status_code in (200, 202), first.text
    job_id = first.json()["id"]
    for _ in range(200):
        got = await c.get(f"/v1/generations/{job_id}")
        if got.json()["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    hit = await c.post("/v1/generations", json=BODY)  # the cache hit, with its image
    listed = await c.get("/v1/generations")
    events = await c.get(f"/v1/generations/{job_id}/events")
    assert got.json()["image"] is not None and hit.status_code == 200
    return [first.json(), got.json(), hit.json(), listed.json(), *sse_jobs(events.text)]


@pytest.mark.parametrize(
    ("public_url", "host", "base"),
    [
        ("", None, "http://127.0.0.1:8000/"),
        ("", "pixelpipe.test:9000", "http://pixelpipe.test:9000/"),
        ("https://pp.example.com/", "pixelpipe.test:9000", "https://pp.example.com/"),
    ],
)
async def test_every_api_answer_has_absolute_urls(
    tmp_path: Path, public_url: str, host: str | None, base: str
) -> None:
    headers = {"Host": host} if host else None
    async with (
        running_app(tmp_path / "data", public_url=public_url) as srv,
        srv.client(headers=headers) as c,
    ):
        payloads = await answers(c)
        location = (await c.post("/v1/generations", json={**BODY, "seed": 9})).headers
    found = urls_in(payloads)
    assert len(found) > 20 and any("/v1/images/" in u for u in found)
    assert [u for u in found if not u.startswith(base)] == []
    assert location["location"].startswith(f"{base}v1/generations/gen_")


async def test_pipeline_result_url_is_the_stored_file(tmp_path: Path) -> None:
    async with Pipeline(Settings(data_dir=tmp_path / "data")) as p:
        result = await p.generate("a local fox", model="preview", seed=1, size="64x64")
    assert result.url is not None and result.url.startswith("file:///")
    path = Path(unquote(urlsplit(result.url).path))
    assert path.is_file() and path.read_bytes() == result.image
    assert path.is_relative_to((tmp_path / "data").resolve())


async def test_pipeline_with_a_public_url_gives_the_public_url(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", public_url="https://pp.example.com")
    async with Pipeline(settings) as p:
        result = await p.generate("a public fox", model="preview", seed=1, size="64x64")
    assert result.url is not None
    assert result.url.startswith("https://pp.example.com/v1/images/preview/")


def test_cli_generate_in_process_prints_the_file_not_a_made_up_server(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PIXELPIPE_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "1000",  # one line per URL, however long the temporary path
    }
    args = [*CLI, "generate", "a cli fox", "--seed", "3", "--size", "64x64"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "127.0.0.1" not in done.stdout and "http://" not in done.stdout
    url = done.stdout.strip().splitlines()[-1].strip()
    assert url.startswith("file:///") and Path(unquote(urlsplit(url).path)).is_file(), url


@pytest.mark.parametrize(
    ("scheme", "server", "root_path", "host"),
    [
        ("http", ("127.0.0.1", 8000), "", b"127.0.0.1:8000"),
        ("https", ("10.0.0.1", 443), "/pp", None),
        ("http", ("10.0.0.1", 8080), "", b"example.com"),
        ("http", ("10.0.0.1", 80), "", None),
        ("http", ("10.0.0.1", 8080), "/", None),
        ("https", ("10.0.0.1", 8443), "/a/b", b"[::1]:8443"),
    ],
)
def test_the_request_base_is_what_starlette_computes(
    scheme: str, server: tuple[str, int], root_path: str, host: bytes | None
) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "scheme": scheme,
        "server": server,
        "root_path": root_path,
        "path": f"{root_path.rstrip('/')}/v1/generations",
        "query_string": b"",
        "headers": [(b"host", host)] if host else [],
    }
    assert scope_base(scope) == str(Request(scope).base_url).rstrip("/")
