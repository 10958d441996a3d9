"""OpenAI's own partial images, relayed: with ``PIXELPIPE_OPENAI_PARTIAL_IMAGES`` the OpenAI
provider streams from the fake OpenAI (over a real socket) and hands each partial to the worker
as it came (undecoded); the worker publishes it to the process's partial hub and stores its
thumbnail as the job's live preview; the completed event is the run's answer."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import pytest
from PIL import Image

from pixelpipe.errors import ProviderContentRejected
from pixelpipe.events.local import LocalNotifier
from pixelpipe.events.partials import Partial, PartialHub
from pixelpipe.fakes.common import Behaviour
from pixelpipe.fakes.openai import FakeOpenAI
from pixelpipe.fakes.server import serve_app
from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.memory.store import MemoryJobStore
from pixelpipe.providers.base import ProviderRequest, RunState, WatchesProgress
from pixelpipe.providers.openai import stream
from pixelpipe.providers.openai.client import OpenAIProvider
from pixelpipe.providers.openai.stream import StreamingOpenAIProvider
from pixelpipe.providers.previews import PREVIEW_MAX_BYTES
from pixelpipe.worker.progress import write_progress

KEY = "sk-test-key-0123456789"


def _req(prompt: str = "a red fox") -> ProviderRequest:
    canon = CanonicalRequest(
        model="gpt-image-1", prompt=prompt, seed=1, width=1024, height=1024, format="png"
    )
    return ProviderRequest("gen_relay", 1, canon, "gpt-image-1")


async def _previews(
    provider: StreamingOpenAIProvider, req: ProviderRequest
) -> tuple[Any, list[Any]]:
    """Submit ``req`` while reading its previews, as the worker does (worker/progress.py)."""
    updates = provider.watch_progress(req.job_id)
    seen: list[dict[str, Any]] = []

    async def collect() -> None:
        async for progress in updates:
            seen.append(progress)

    reader = asyncio.create_task(collect())
    try:
        update = await provider.submit(req)
        for _ in range(100):  # what was relayed before the answer is still read
            if len(seen) >= provider.partial_images:
                break
            await asyncio.sleep(0.02)
    finally:
        reader.cancel()
        await asyncio.wait([reader])
    return update, seen


async def test_partials_become_previews_and_the_completed_event_the_answer() -> None:
    fake = FakeOpenAI(api_key=KEY, behaviour=Behaviour(latency_s=0.3))
    async with serve_app(fake.app) as url:
        streaming = StreamingOpenAIProvider(KEY, base_url=url + "/v1", partial_images=2)
        plain = OpenAIProvider(KEY, base_url=url + "/v1")
        try:
            assert isinstance(streaming, WatchesProgress)
            update, seen = await _previews(streaming, _req())
            direct = await plain.submit(_req())
        finally:
            await streaming.aclose()
            await plain.aclose()
    assert update.state is RunState.SUCCEEDED
    (out,) = update.outputs
    assert out.data is not None and out.data == direct.outputs[0].data  # the same image
    assert update.usage["output_tokens"] > 0 and update.usage["image_count"] == 1
    assert [p["percent"] for p in seen] == [33.3, 66.7]
    raws = [p["partial_image"] for p in seen]  # as OpenAI sent them: full size, undecoded
    assert [r["partial_image_index"] for r in raws] == [0, 1]
    assert len({r["b64_json"] for r in raws}) == 2
    for raw in raws:
        assert raw["output_format"] == "png"
        with Image.open(io.BytesIO(base64.b64decode(raw["b64_json"]))) as im:
            assert im.format == "PNG" and im.size == (1024, 1024)


async def _replay(items: list[dict[str, Any]]) -> Any:
    for item in items:
        yield item


async def test_the_worker_publishes_the_raw_partial_and_stores_its_thumbnail() -> None:
    fake = FakeOpenAI(api_key=KEY, behaviour=Behaviour(latency_s=0.3))
    async with serve_app(fake.app) as url:
        streaming = StreamingOpenAIProvider(KEY, base_url=url + "/v1", partial_images=2)
        try:
            _, seen = await _previews(streaming, _req())
        finally:
            await streaming.aclose()
    store, hub = MemoryJobStore(LocalNotifier()), PartialHub()
    clock = iter([0.0, 1.0]).__next__  # past the two-a-second limit
    async with hub.subscribe("gen_relay") as relayed:
        await write_progress(store, "gen_relay", _replay(seen), clock, hub=hub)
        got = [await anext(relayed), await anext(relayed)]
    assert got == [
        Partial(s["partial_image"]["b64_json"], "png", i, s["percent"]) for i, s in enumerate(seen)
    ]
    stored = [e.data for e in await store.events_since("gen_relay")]
    assert [d["percent"] for d in stored] == [33.3, 66.7]
    assert all("partial_image" not in d for d in stored)  # the full partial is never stored
    previews = [d["preview"] for d in stored]
    assert len(set(previews)) == 2
    for preview in previews:
        header, _, payload = preview.partition(",")
        assert header == "data:image/webp;base64"
        data = base64.b64decode(payload)
        assert len(data) <= PREVIEW_MAX_BYTES
        with Image.open(io.BytesIO(data)) as im:
            assert max(im.size) <= 256
    assert hub.jobs() == 0  # nobody subscribes: the job's entry is gone


async def test_partials_that_come_with_the_answer_reach_the_readers_all_the_same() -> None:
    """A fast run's events come in one read, its partials with its answer; the worker stops
    watching as soon as the submit returns (worker/progress.py cancels its watcher), so the
    answer waits until the worker has taken the partials relayed before it."""
    fake = FakeOpenAI(api_key=KEY, behaviour=Behaviour(latency_s=0.0))  # no spread: one read
    store, hub = MemoryJobStore(LocalNotifier()), PartialHub()
    async with serve_app(fake.app) as url, hub.subscribe("gen_relay") as relayed:
        streaming = StreamingOpenAIProvider(KEY, base_url=url + "/v1", partial_images=2)
        updates = streaming.watch_progress("gen_relay")
        watcher = asyncio.create_task(write_progress(store, "gen_relay", updates, hub=hub))
        try:
            update = await streaming.submit(_req())
        finally:
            watcher.cancel()  # as the worker does once the submit returned
            await asyncio.wait([watcher])
            await streaming.aclose()
        got = [await asyncio.wait_for(anext(relayed), 5) for _ in range(2)]
    assert update.state is RunState.SUCCEEDED
    assert [(p.index, p.percent) for p in got] == [(0, 33.3), (1, 66.7)]


async def test_an_answer_does_not_wait_for_partials_once_the_worker_stopped_watching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Relayed partials nobody will take (the worker's watching ended, e.g. on an error) do not
    hold the answer back: it waits only for a watcher that is still there."""
    monkeypatch.setattr(stream, "DRAIN_S", 60.0)
    provider = StreamingOpenAIProvider(KEY, partial_images=2)
    try:
        updates = provider.watch_progress("gen_relay")
        partial = {"b64_json": "aGk=", "partial_image_index": 0}
        provider._relay("gen_relay", partial)
        provider._relay("gen_relay", partial | {"partial_image_index": 1})
        assert await anext(updates)  # the worker takes the first
        answer = asyncio.create_task(provider._taken("gen_relay"))  # the completed event came
        await asyncio.sleep(0.05)
        assert not answer.done()  # the worker still watches: the answer waits for it
        await updates.aclose()  # then it stops watching, the second partial untaken
        await asyncio.wait_for(answer, 5)
    finally:
        await provider.aclose()


async def test_a_refusal_before_the_stream_is_the_usual_error() -> None:
    fake = FakeOpenAI(api_key=KEY, behaviour=Behaviour(latency_s=0.1))
    async with serve_app(fake.app) as url:
        provider = StreamingOpenAIProvider(KEY, base_url=url + "/v1", partial_images=1)
        try:
            with pytest.raises(ProviderContentRejected):
                await _previews(provider, _req("a fox [blocked]"))
        finally:
            await provider.aclose()
