"""The official ``openai`` SDK's image streaming against ``pixelpipe serve`` (subprocess).

``client.images.generate(..., stream=True, partial_images=N)`` iterates OpenAI's server-sent events
unchanged: the offline preview provider's simulated partials (coarse to fine), then the completed
event with the image the pipeline stored; cache hits, refusals, failures and readers that leave.
"""

from __future__ import annotations

import base64
import io
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from tests.integrations.conftest import Fakes, start_server
from tests.support.serve import Server, metric

pytestmark = pytest.mark.slow
SUBMISSIONS = "pixelpipe_provider_submissions_total"
LATENCY_MS = 2000  # three simulated partials, 0.5 s apart
PARTIAL = "image_generation.partial_image"
COMPLETED = "image_generation.completed"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, fakes: Fakes) -> Iterator[dict[str, Server]]:
    """``slow``: the preview draws for 2 s (partials to watch), on the fake providers too (the
    fake OpenAI streamed with two partials);
    ``priced``: a $0.001 daily budget (flux-schnell costs $0.003)."""
    envs = {
        "slow": {
            **fakes.env,
            "PIXELPIPE_PREVIEW_LATENCY_MS": str(LATENCY_MS),
            "PIXELPIPE_OPENAI_PARTIAL_IMAGES": "2",  # OpenAI's own partials, relayed
        },
        "priced": {**fakes.env, "PIXELPIPE_BUDGET_DAILY_USD": "0.001"},
    }
    root = tmp_path_factory.mktemp("oai-stream")
    with ThreadPoolExecutor(2) as pool:
        futures = {n: pool.submit(start_server, root / n / "data", e) for n, e in envs.items()}
        started = {n: f.result() for n, f in futures.items()}
    try:
        yield started
    finally:
        for srv in started.values():
            srv.stop()


@pytest.fixture(scope="module")
def slow(servers: dict[str, Server]) -> Server:
    return servers["slow"]


def client(srv: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-unused", max_retries=0)


def stream(srv: Server, **kw: Any) -> tuple[list[Any], httpx.Headers]:
    """Every event of one streamed generation, and the response's headers."""
    raw = client(srv).images.with_raw_response.generate(stream=True, **kw)
    return list(raw.parse()), raw.headers


def attempts(srv: Server, job_id: str) -> int:
    """The job's provider attempts in the ledger (each one is billed exactly once)."""
    with sqlite3.connect(srv.data_dir / "pixelpipe.db") as db:
        row = db.execute(
            "SELECT count(*) FROM ledger_entries WHERE job_id = ? AND kind = 'attempt'", (job_id,)
        ).fetchone()
    return int(row[0])


def stored_image(srv: Server, job_id: str) -> bytes:
    """The job's stored image. Its stream's completed event may come before the job's last
    commit (the image handed over once billed and stored: ``events/partials.py``): the job
    finishes within moments, and nothing else may happen to it meanwhile."""
    deadline = time.monotonic() + 5
    while (job := httpx.get(f"{srv.url}/v1/generations/{job_id}", timeout=10).json())["status"] in (
        "fetching",
        "storing",
    ) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job["status"] == "succeeded", job
    return httpx.get(job["image"]["url"], timeout=10).content


def decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_partials_then_the_stored_image_and_a_cache_hit_at_once(slow: Server) -> None:
    request = {"prompt": "a lighthouse at dusk", "size": "256x256", "extra_body": {"seed": 7}}
    events, headers = stream(slow, partial_images=2, output_format="png", **request)

    assert [e.type for e in events] == [PARTIAL, PARTIAL, COMPLETED]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    for e in events:
        assert (e.size, e.output_format, e.background) == ("256x256", "png", "auto")
        assert e.quality == "auto" and e.created_at > 0
        assert decoded(e.b64_json).format == "PNG"
    partials = [base64.b64decode(e.b64_json) for e in events[:2]]
    final = base64.b64decode(events[-1].b64_json)
    assert len({*partials, final}) == 3  # coarse, finer, the image
    (job_id,) = headers["x-pixelpipe-generation-ids"].split(",")
    assert headers["x-pixelpipe-cached"] == "false"
    assert final == stored_image(slow, job_id)  # the stored image, not a preview
    assert decoded(events[-1].b64_json).size == (256, 256)
    assert events[-1].usage.total_tokens == 0  # the preview has no tokens
    assert attempts(slow, job_id) == 1

    # the same request again: a cache hit streams its completed event at once
    calls = metric(slow.url, SUBMISSIONS, 'provider="preview"')
    started = time.monotonic()
    again, headers = stream(slow, partial_images=2, output_format="png", **request)
    assert time.monotonic() - started < LATENCY_MS / 1000
    assert [e.type for e in again] == [COMPLETED]
    assert base64.b64decode(again[0].b64_json) == final
    assert headers["x-pixelpipe-cached"] == "true"
    assert metric(slow.url, SUBMISSIONS, 'provider="preview"') == calls  # no provider call
    (hit_id,) = headers["x-pixelpipe-generation-ids"].split(",")
    assert attempts(slow, hit_id) == 0 and attempts(slow, job_id) == 1  # nothing billed


def test_no_partials_asked_or_none_made_only_the_completed_event(slow: Server) -> None:
    events, _ = stream(slow, prompt="a quiet harbour", size="64x64", partial_images=0)
    assert [e.type for e in events] == [COMPLETED]
    # a model whose provider sends no partials (flux-schnell on the fake Replicate)
    events, headers = stream(slow, prompt="a hare", model="flux-schnell", partial_images=3)
    assert [e.type for e in events] == [COMPLETED]
    (job_id,) = headers["x-pixelpipe-generation-ids"].split(",")
    assert base64.b64decode(events[0].b64_json) == stored_image(slow, job_id)


def test_refusals_before_the_stream_are_errors_with_their_status(
    slow: Server, servers: dict[str, Server]
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        stream(slow, prompt="a beheading scene", size="64x64", partial_images=1)
    assert err.value.code == "content_policy_violation"
    with pytest.raises(openai.BadRequestError) as err:
        stream(slow, prompt="three owls", size="64x64", n=2)
    assert err.value.param == "n" and "n=1" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        stream(slow, prompt="an owl", size="64x64", partial_images=4)
    assert err.value.param == "partial_images"
    with pytest.raises(openai.RateLimitError) as quota:
        stream(servers["priced"], prompt="a fox", model="flux-schnell", partial_images=1)
    assert quota.value.status_code == 429 and quota.value.code == "insufficient_quota"


def test_a_failure_after_the_stream_started_raises_in_the_sdk(slow: Server, fakes: Fakes) -> None:
    fakes.control(content_policy_next=1)  # the provider refuses the run itself
    try:
        with pytest.raises(openai.APIError) as err:
            stream(slow, prompt="a fox at the gate", model="flux-schnell", partial_images=1)
    finally:
        fakes.control(reset=True, latency_s=0.2)
    assert not isinstance(err.value, openai.APIStatusError)  # an error event, not a status
    assert err.value.code == "content_policy_violation"
    assert "generation gen_" in err.value.message


def test_a_reader_that_leaves_mid_stream_leaves_the_job_running(slow: Server) -> None:
    body = {"prompt": "a kite over dunes", "size": "128x128", "stream": True, "partial_images": 3}
    with httpx.stream("POST", f"{slow.url}/v1/images/generations", json=body, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        job_id = r.headers["x-pixelpipe-generation-ids"]
        lines = r.iter_lines()
        assert next(lines) == f"event: {PARTIAL}"  # the first partial arrived; now hang up
    deadline = time.monotonic() + 60
    while (
        status := httpx.get(f"{slow.url}/v1/generations/{job_id}", timeout=10).json()["status"]
    ) != "succeeded":
        assert status not in ("failed", "canceled") and time.monotonic() < deadline, status
        time.sleep(0.2)
    assert Image.open(io.BytesIO(stored_image(slow, job_id))).size == (128, 128)
    assert attempts(slow, job_id) == 1  # billed once
    job = httpx.get(f"{slow.url}/v1/generations/{job_id}", timeout=10).json()
    assert "preview" not in job["progress"]  # not replayed once the job ended


def test_openais_own_partials_are_relayed(slow: Server, fakes: Fakes) -> None:
    fakes.control(latency_s=1.5)  # partials 0.5 s apart: both pass the two-a-second limit
    try:
        events, headers = stream(
            slow, prompt="a paper crane", model="gpt-image-1", size="1024x1024", partial_images=2
        )
    finally:
        fakes.control(latency_s=0.2)
    assert [e.type for e in events] == [PARTIAL, PARTIAL, COMPLETED]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    final = base64.b64decode(events[-1].b64_json)
    (job_id,) = headers["x-pixelpipe-generation-ids"].split(",")
    assert final == stored_image(slow, job_id)
    assert events[-1].usage.output_tokens > 0  # OpenAI's usage, as without streaming
    with decoded(events[-1].b64_json) as image:
        full = image.size
    assert full == (1024, 1024)
    for e in events[:2]:  # OpenAI's partials as they came: full size, like OpenAI's own stream
        with decoded(e.b64_json) as partial:
            assert partial.format == e.output_format.upper() and partial.size == full
    assert len({e.b64_json for e in events}) == 3  # two partials, then the image
    assert attempts(slow, job_id) == 1
