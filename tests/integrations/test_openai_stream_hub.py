"""The OpenAI stream with the in-process partial hub (``events/partials.py``), no worker: a raw
partial the hub relays is sent as it came (full size, its base64 untouched; re-encoded when the
reader asked for another format) and its stored progress event is not sent again; a partial the
hub did not relay (dropped, or published in another process) still comes as the stored event's
thumbnail; the reader's ``partial_image_index`` counts on, nothing twice."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import orjson
from PIL import Image

from pixelpipe.api.openai_stream import StreamPlan, stream_response
from pixelpipe.events.partials import Partial, PartialHub
from pixelpipe.jobs.model import Job
from pixelpipe.providers.previews import thumbnail_url
from pixelpipe.services import Services
from pixelpipe.usecases.submit import submit
from tests.usecases.conftest import body

PARTIAL = "image_generation.partial_image"


def _picture(colour: tuple[int, int, int], fmt: str, side: int = 96) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buf, fmt)
    return buf.getvalue()


async def _read(svc: Services, job: Job, plan: StreamPlan, out: list[Any]) -> None:
    async def disconnected() -> bool:
        return False

    response = stream_response(svc, job, plan, disconnected, lambda jobs: None)
    async for chunk in response.body_iterator:
        raw = chunk if isinstance(chunk, bytes) else str(chunk).encode()
        head, _, data = raw.partition(b"\ndata: ")
        out.append((head.removeprefix(b"event: ").decode(), orjson.loads(data)))


async def _until(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not in time")


Step = Partial | tuple[Partial, ...] | dict[str, Any]


async def _run(svc: Services, job: Job, steps: list[Step]) -> list[Any]:
    """A reader of ``job`` while ``steps`` happen in order: a Partial is published to the hub (a
    tuple of them at once), a dict is stored as a progress event (each step once the reader has
    taken the previous)."""
    out: list[Any] = []
    reader = asyncio.create_task(_read(svc, job, StreamPlan(3, timeout_s=1.5), out))
    await _until(lambda: svc.partials.jobs() == 1)  # subscribed
    for step in steps:
        if isinstance(step, Partial | tuple):
            for partial in step if isinstance(step, tuple) else (step,):
                svc.partials.publish(job.id, partial)
        else:
            await svc.store.add_event(job.id, "progress", step)
        await asyncio.sleep(0.15)
    await reader
    assert svc.partials.jobs() == 0  # the reader's subscription ended with its stream
    return out


async def test_relayed_partials_go_as_they_came_and_their_stored_events_not_again(
    svc: Services,
) -> None:
    job = (await submit(svc, body("a relayed fox", format="png"))).job  # no worker: it waits
    first, second, third = (_picture(c, "PNG") for c in ((200, 0, 0), (0, 200, 0), (0, 0, 200)))
    b64 = [base64.b64encode(p).decode() for p in (first, second)]
    events = await _run(
        svc,
        job,
        [
            Partial(b64[0], "png", 0, 25.0),
            {"percent": 25.0, "preview": thumbnail_url(first)},  # the same partial: not again
            Partial(b64[1], "png", 1, 50.0),
            {"percent": 50.0, "preview": thumbnail_url(second)},
            # the hub dropped this one (or it was published in another process): its thumbnail
            {"percent": 75.0, "preview": thumbnail_url(third)},
        ],
    )
    assert [kind for kind, _ in events] == [PARTIAL, PARTIAL, PARTIAL, "error"]  # no worker
    partials = [data for _, data in events[:3]]
    assert [p["partial_image_index"] for p in partials] == [0, 1, 2]
    assert [p["b64_json"] for p in partials[:2]] == b64  # untouched: not decoded, not re-encoded
    with Image.open(io.BytesIO(base64.b64decode(partials[2]["b64_json"]))) as im:
        assert im.format == "PNG" and im.size == (96, 96)  # the thumbnail (96 px: not shrunk)
        assert im.convert("RGB").getpixel((5, 5))[2] > 150  # the third picture's


async def test_a_partial_in_another_format_is_re_encoded_full_size(svc: Services) -> None:
    job = (await submit(svc, body("a webp fox", format="webp"))).job
    jpeg = _picture((10, 120, 240), "JPEG", side=128)
    partial = Partial(base64.b64encode(jpeg).decode(), "jpeg", 0, 50.0)
    events = await _run(svc, job, [partial, {"percent": 50.0, "preview": thumbnail_url(jpeg)}])
    assert [kind for kind, _ in events] == [PARTIAL, "error"]
    data = events[0][1]
    assert data["partial_image_index"] == 0 and data["output_format"] == "webp"
    with Image.open(io.BytesIO(base64.b64decode(data["b64_json"]))) as im:
        assert im.format == "WEBP" and im.size == (128, 128)  # full size, the asked format


async def test_a_partial_the_hub_dropped_comes_as_its_thumbnail_and_nothing_twice(
    svc: Services,
) -> None:
    svc.partials = PartialHub(keep=1)  # a reader that fell behind by one: the oldest is dropped
    job = (await submit(svc, body("a dropped fox", format="png"))).job
    first, second = _picture((200, 0, 0), "PNG"), _picture((0, 200, 0), "PNG")
    relayed = [
        Partial(base64.b64encode(p).decode(), "png", i, 25.0 * (i + 1))
        for i, p in enumerate((first, second))
    ]
    events = await _run(
        svc,
        job,
        [
            (relayed[0], relayed[1]),  # both before the reader took one: the first is dropped
            {"percent": 25.0, "preview": thumbnail_url(first)},  # so its thumbnail is sent
            {"percent": 50.0, "preview": thumbnail_url(second)},  # sent from the hub: not again
        ],
    )
    assert [kind for kind, _ in events] == [PARTIAL, PARTIAL, "error"]
    partials = [data for _, data in events[:2]]
    assert [p["partial_image_index"] for p in partials] == [0, 1]
    assert partials[0]["b64_json"] == relayed[1].b64_json  # the newest, from the hub
    with Image.open(io.BytesIO(base64.b64decode(partials[1]["b64_json"]))) as im:
        assert im.convert("RGB").getpixel((5, 5))[0] > 150  # the dropped one's thumbnail
