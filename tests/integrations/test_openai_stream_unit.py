"""The streamed answer's events from the job's own events, in-process (SQLite, no worker): a
preview becomes a partial image in the requested format; a job not ready in time, an ``error``
event; a reader that left, nothing more."""

from __future__ import annotations

import base64
import io
from typing import Any

import orjson
from PIL import Image

from pixelpipe.api.openai_stream import StreamPlan, stream_response
from pixelpipe.jobs.model import Job
from pixelpipe.providers.previews import preview_url
from pixelpipe.services import Services
from pixelpipe.usecases.submit import submit
from tests.usecases.conftest import body


def _webp() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 40, 40)).save(buf, "WEBP")
    url = preview_url(buf.getvalue())
    assert url is not None
    return url


async def _events(svc: Services, job: Job, plan: StreamPlan, left: bool = False) -> list[Any]:
    async def disconnected() -> bool:
        return left

    response = stream_response(svc, job, plan, disconnected, lambda jobs: None)
    out = []
    async for chunk in response.body_iterator:
        raw = chunk if isinstance(chunk, bytes) else str(chunk).encode()
        head, _, data = raw.partition(b"\ndata: ")
        out.append((head.removeprefix(b"event: ").decode(), orjson.loads(data)))
    return out


async def test_a_preview_then_an_error_event_when_the_image_is_not_ready_in_time(
    svc: Services,
) -> None:
    job = (await submit(svc, body("a slow fox", format="png"))).job  # no worker: it waits
    await svc.store.add_event(job.id, "progress", {"percent": 10.0, "preview": _webp()})
    await svc.store.add_event(job.id, "progress", {"percent": 20.0})  # no preview: nothing
    events = await _events(svc, job, StreamPlan(partial_images=3, timeout_s=0.2))
    assert [kind for kind, _ in events] == ["image_generation.partial_image", "error"]
    partial = events[0][1]
    assert partial["type"] == "image_generation.partial_image"
    assert partial["partial_image_index"] == 0 and partial["output_format"] == "png"
    assert partial["size"] == "64x64" and partial["background"] == "auto"
    with Image.open(io.BytesIO(base64.b64decode(partial["b64_json"]))) as im:
        assert im.format == "PNG"  # transcoded to what was asked
    error = events[1][1]
    assert error["type"] == "error" and error["error"]["code"] == "timeout"
    assert job.id in error["error"]["message"]


async def test_no_partials_asked_and_a_reader_that_left(svc: Services) -> None:
    job = (await submit(svc, body("a slower fox"))).job
    await svc.store.add_event(job.id, "progress", {"percent": 10.0, "preview": _webp()})
    events = await _events(svc, job, StreamPlan(partial_images=0, timeout_s=0.2))
    assert [kind for kind, _ in events] == ["error"]
    # a reader that left gets what was there when it was last read, then nothing: no error
    # event, no wait for the job (which runs on)
    left = await _events(svc, job, StreamPlan(partial_images=2, timeout_s=60), left=True)
    assert [kind for kind, _ in left] == ["image_generation.partial_image"]
