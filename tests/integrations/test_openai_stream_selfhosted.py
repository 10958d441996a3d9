"""Self-hosted servers' live previews as the OpenAI stream's partial images (issue 17), through
``pixelpipe serve`` in a subprocess and the official ``openai`` SDK: AUTOMATIC1111's
``current_image`` and ComfyUI's binary preview frames (the protocol-faithful fakes of
``pixelpipe fake-providers``), and a REAL cog server (coglet) whose predictor yields its picture
forming, reaching pixelpipe as ``output`` webhooks. Each stream is its partials (in order, in the
requested format) then the completed event with the stored image; the previews in the job's
events come at most two a second, the run is billed once, and a later identical request (a cache
hit) gets the completed event alone: previews are not replayed once the job has ended."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from PIL import Image

from pixelpipe.fakes.server import catalog_example
from tests.selfhosted.server_rows import image_bytes, ledger_entries, query, wait_done
from tests.servers.cog import CogServer
from tests.support.serve import Server, free_port, start_fake_providers, stop_pid

pytestmark = [pytest.mark.servers, pytest.mark.slow]

COG_BACKEND = """
[backends.cog_forming]
kind = "cog"
url = "{url}"
usd_per_gpu_hour = 3.6
options = {{ input = {{ previews = 3, sleep_s = 0.7 }} }}

[models.cog-forming]
label = "cog predictor that yields its picture forming"
formats = ["png"]
aspect_ratios = {{ "1:1" = [64, 64] }}
typical_latency_s = 3.0
backends = ["cog_forming"]
"""
PREVIEWS = (
    "SELECT created_at, data FROM job_events WHERE job_id = ? AND type = 'progress' ORDER BY id"
)
LATEST = "SELECT id FROM jobs WHERE model = ? ORDER BY created_at DESC LIMIT 1"
PREDICTOR = Path(__file__).resolve().parent.parent / "cog_preview_predictor"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`pixelpipe serve` (webhooks on its own URL) on the fakes' catalog example plus a real cog
    server running ``tests/cog_preview_predictor``; the fakes slowed so runs take seconds."""
    root = tmp_path_factory.mktemp("selfhosted-stream")
    fakes, url = start_fake_providers(root / "fakes.log")
    server = None
    try:
        with CogServer(root / "cog", predictor_dir=PREDICTOR) as cog:
            a1111 = f"{url}/a1111"
            httpx.post(f"{a1111}/_control", json={"step_s": 0.6}, timeout=5).raise_for_status()
            options = {"show_progress_every_n_steps": 1}
            httpx.post(f"{a1111}/sdapi/v1/options", json=options, timeout=5).raise_for_status()
            httpx.post(f"{url}/comfyui/_control", json={"step_s": 0.1}, timeout=5)
            catalog = root / "catalog.toml"
            catalog.write_text(catalog_example(url) + COG_BACKEND.format(url=cog.url))
            port = free_port()
            env = {
                "PIXELPIPE_CATALOG_PATH": str(catalog),
                "PIXELPIPE_TEST_MODE": "true",
                "PIXELPIPE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            }
            server = Server(root / "data", env, port=port).start(timeout_s=120)
            yield server
    finally:
        if server is not None:
            server.stop()
        stop_pid(fakes)


def stream(srv: Server, model: str, size: str, fmt: str, prompt: str) -> list[Any]:
    """The stream's events; a fixed seed (pixelpipe's extra field) makes a repeat a cache hit."""
    client = OpenAI(base_url=f"{srv.url}/v1", api_key="unused", timeout=120, max_retries=0)
    events = client.images.generate(  # type: ignore[call-overload]
        model=model,
        prompt=prompt,
        size=size,
        output_format=fmt,
        stream=True,
        partial_images=2,
        extra_body={"seed": 7},
    )
    return list(events)


def picture(b64: str) -> Image.Image:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        im.load()
        return im


def check_stream(srv: Server, model: str, size: str, fmt: str) -> tuple[str, list[Any]]:
    """Partials 0 and 1 in ``fmt`` then the completed event with the stored image; the job's
    previews at most two a second; billed once. (job id, events)."""
    events = stream(srv, model, size, fmt, f"a lighthouse, streamed from {model}")
    kinds = [e.type for e in events]
    assert kinds == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    for partial in events[:2]:
        assert partial.output_format == fmt and picture(partial.b64_json).format == fmt.upper()
        assert max(picture(partial.b64_json).size) <= 256  # a thumbnail of the picture forming
    (job_id,) = query(srv.data_dir, LATEST, model)[0]
    gen = wait_done(srv, job_id)
    assert gen["status"] == "succeeded"
    assert base64.b64decode(events[-1].b64_json) == image_bytes(srv, gen)  # the stored image
    shown = [(at, json.loads(d)) for at, d in query(srv.data_dir, PREVIEWS, job_id)]
    times = [at for at, data in shown if "preview" in data]
    assert len(times) >= 2 and all(b - a >= 0.45 for a, b in pairwise(times)), times
    (entry,) = [e for e in ledger_entries(srv.data_dir, job_id) if e["state"] == "billed"]
    assert entry["basis"] == "gpu_time"  # the run, once; previews are never billed
    return job_id, events


def test_a1111_current_image_streams_as_partials(stack: Server) -> None:
    check_stream(stack, "sd-fake", "1024x1024", "webp")  # from PNG previews


def test_comfyui_previews_stream_as_partials(stack: Server) -> None:
    check_stream(stack, "sdxl-comfy-fake", "1024x1024", "png")  # from JPEG frames


def test_cog_output_webhooks_stream_as_partials_and_the_last_output_is_the_image(
    stack: Server,
) -> None:
    job_id, events = check_stream(stack, "cog-forming", "64x64", "png")
    final = picture(events[-1].b64_json)
    # the final picture (two flat colours), not a blurred frame that came before it
    assert final.size == (64, 64) and len(set(final.convert("RGB").getdata())) == 2
    progress = [json.loads(d) for _, d in query(stack.data_dir, PREVIEWS, job_id)]
    assert any(p.get("steps") == 4 and p.get("step", 0) >= 1 for p in progress), progress
    # the same request again: a cache hit, the completed event alone (no preview replayed)
    again = stream(stack, "cog-forming", "64x64", "png", "a lighthouse, streamed from cog-forming")
    assert [e.type for e in again] == ["image_generation.completed"]
    assert again[0].b64_json == events[-1].b64_json
