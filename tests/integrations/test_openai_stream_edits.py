"""``client.images.edit(..., stream=True, partial_images=N)`` from the official ``openai`` SDK
against ``pixelpipe serve`` (subprocess) on the offline preview model: ``image_edit.partial_image``
events, then ``image_edit.completed`` with the stored image; a cache hit at once; refusals before
the stream; keep-alive comments while the edit draws, which the SDK skips."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from tests.integrations.conftest import start_server
from tests.support.serve import Server

pytestmark = pytest.mark.slow
PARTIAL = "image_edit.partial_image"
COMPLETED = "image_edit.completed"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The preview draws for 2 s (three partials, 0.5 s apart); a keep-alive after 0.3 s quiet."""
    env = {"PIXELPIPE_PREVIEW_LATENCY_MS": "2000", "PIXELPIPE_STREAM_KEEPALIVE_S": "0.3"}
    srv = start_server(tmp_path_factory.mktemp("oai-edit-stream") / "data", env)
    try:
        yield srv
    finally:
        srv.stop()


def png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buf, "PNG")
    return buf.getvalue()


def edit(srv: Server, **kw: Any) -> tuple[list[Any], httpx.Headers]:
    """Every event of one streamed edit of a teal picture, and the response's headers."""
    client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-unused", max_retries=0)
    kw.setdefault("image", ("teal.png", png("teal"), "image/png"))
    raw = client.images.with_raw_response.edit(stream=True, **kw)
    return list(raw.parse()), raw.headers


def stored_image(srv: Server, job_id: str) -> bytes:
    job = httpx.get(f"{srv.url}/v1/generations/{job_id}", timeout=10).json()
    assert job["status"] == "succeeded", job
    return httpx.get(job["image"]["url"], timeout=10).content


def test_edit_partials_then_the_stored_image_then_a_cache_hit(server: Server) -> None:
    request = {"prompt": "the harbour at dusk", "size": "128x128", "extra_body": {"seed": 5}}
    events, headers = edit(server, partial_images=2, output_format="png", **request)

    assert [e.type for e in events] == [PARTIAL, PARTIAL, COMPLETED]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    for e in events:
        assert (e.size, e.output_format, e.background, e.quality) == (
            "128x128",
            "png",
            "auto",
            "auto",
        )
    (job_id,) = headers["x-pixelpipe-generation-ids"].split(",")
    final = base64.b64decode(events[-1].b64_json)
    assert final == stored_image(server, job_id)
    assert len({base64.b64decode(e.b64_json) for e in events}) == 3  # coarse, finer, the image
    assert events[-1].usage.total_tokens == 0
    job = httpx.get(f"{server.url}/v1/generations/{job_id}", timeout=10).json()
    assert len(job["request"]["images"]) == 1  # an edit, with its input image

    again, headers = edit(server, partial_images=2, output_format="png", **request)
    assert [e.type for e in again] == [COMPLETED]
    assert headers["x-pixelpipe-cached"] == "true"
    assert base64.b64decode(again[0].b64_json) == final


def test_edit_refusals_come_before_the_stream_with_their_status(server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        edit(server, prompt="two owls", n=2, partial_images=1)
    assert err.value.param == "n" and "n=1" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        edit(server, prompt="an owl", partial_images=4)
    assert err.value.param == "partial_images"
    with pytest.raises(openai.BadRequestError) as err:
        edit(server, prompt="a beheading scene", partial_images=1)
    assert err.value.code == "content_policy_violation"
    with pytest.raises(openai.BadRequestError) as err:
        edit(server, prompt="an owl", image=("x.png", b"not a picture", "image/png"))
    assert err.value.param == "image"


def test_keep_alive_comments_while_it_draws_are_skipped_by_the_sdk(server: Server) -> None:
    fields = {"prompt": "a windmill", "size": "64x64", "stream": "true", "partial_images": "1"}
    files = {"image": ("teal.png", png("olive"), "image/png")}
    with httpx.stream(
        "POST", f"{server.url}/v1/images/edits", data=fields, files=files, timeout=30
    ) as res:
        assert res.status_code == 200, res.read()
        lines = list(res.iter_lines())
    assert ": keep-alive" in lines  # 0.5 s between the partials: a quiet stretch over 0.3 s
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events == [PARTIAL, COMPLETED]
    # the same kind of stream through the SDK: the comments are not events
    sdk_events, _ = edit(server, prompt="a watermill", size="64x64", partial_images=1)
    assert [e.type for e in sdk_events] == [PARTIAL, COMPLETED]
