"""The official npm ``openai`` SDK (pinned in ``package.json``, installed from the registry by
``conftest.py``) streams from ``pixelpipe serve`` unchanged (issue 17): ``node stream.mjs``
iterates ``client.images.generate({stream: true, partial_images: 2})`` and then
``client.images.edit`` with the same options — the offline preview model's simulated partials
(``PIXELPIPE_PREVIEW_LATENCY_MS``), in order, then the completed event with the stored image."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.serve import Server

pytestmark = pytest.mark.slow

NODE_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``pixelpipe serve`` whose preview model draws for 2 s: three partials to stream."""
    data = tmp_path_factory.mktemp("npm-openai") / "data"
    env = {"PIXELPIPE_PREVIEW_LATENCY_MS": "2000", "PIXELPIPE_TEST_MODE": "true"}
    with Server(data, env).start(timeout_s=120) as srv:
        yield srv


def stored_sha256(srv: Server, generation_id: str) -> str:
    gen = httpx.get(f"{srv.url}/v1/generations/{generation_id}", timeout=30).json()
    assert gen["status"] == "succeeded", gen
    url = gen["image"]["url"]
    image = httpx.get(url if url.startswith("http") else srv.url + url, timeout=30)
    return hashlib.sha256(image.content).hexdigest()


def test_npm_openai_streams_generations_and_edits(
    npm_openai: Path, server: Server, tmp_path: Path
) -> None:
    png = tmp_path / "teal.png"
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(buf, "PNG")
    png.write_bytes(buf.getvalue())
    run = subprocess.run(
        ["node", str(npm_openai / "stream.mjs"), server.url, str(png)],
        cwd=npm_openai,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
    )
    assert run.returncode == 0, run.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in run.stdout.splitlines()]
    for name, prefix in (("generate", "image_generation"), ("edit", "image_edit")):
        head, *events = [e for e in lines if e["stream"] == name]
        assert [e["type"] for e in events] == [
            f"{prefix}.partial_image",
            f"{prefix}.partial_image",
            f"{prefix}.completed",
        ], events
        assert [e["index"] for e in events] == [0, 1, None]
        assert {(e["format"], e["size"]) for e in events} == {("png", "64x64")}
        assert len({e["sha256"] for e in events}) == 3  # coarse, finer, the image
        # the completed event's image is the one pixelpipe stored
        assert events[-1]["sha256"] == stored_sha256(server, head["generation"])
