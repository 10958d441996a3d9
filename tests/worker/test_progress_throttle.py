"""A run's progress is written at most twice a second (``worker/progress.py``): every raw partial
still goes to the process's stream readers at once, but a partial whose event is throttled is not
thumbnailed — a 1024x1024 PNG's decode is the costly part, spent only on an event written."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from pixelpipe.events.local import LocalNotifier
from pixelpipe.events.partials import PartialHub
from pixelpipe.jobs.memory.store import MemoryJobStore
from pixelpipe.worker import progress as progress_module
from pixelpipe.worker.progress import write_progress


def _partial(i: int, percent: float) -> dict[str, Any]:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(buf, "PNG")
    raw = {"b64_json": base64.b64encode(buf.getvalue()).decode(), "output_format": "png"}
    return {
        "state": "running",
        "percent": percent,
        "partial_image": raw | {"partial_image_index": i},
    }


async def _replay(items: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


async def test_a_throttled_partial_is_relayed_but_never_thumbnailed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thumbnailed: list[str] = []
    real = progress_module._thumbnail

    def counted(b64: str) -> str | None:
        thumbnailed.append(b64)
        return real(b64)

    monkeypatch.setattr(progress_module, "_thumbnail", counted)
    updates = [_partial(0, 25.0), _partial(1, 50.0), _partial(2, 75.0)]
    clock = iter([0.0, 0.2, 0.6]).__next__  # the second comes within 0.5 s of the first
    store, hub = MemoryJobStore(LocalNotifier()), PartialHub(keep=3)
    async with hub.subscribe("gen_throttle") as reader:
        await write_progress(store, "gen_throttle", _replay(updates), clock, hub=hub)
        relayed = [await anext(reader) for _ in range(3)]
    assert [p.percent for p in relayed] == [25.0, 50.0, 75.0]  # readers got every partial
    stored = [e.data for e in await store.events_since("gen_throttle")]
    assert [d["percent"] for d in stored] == [25.0, 75.0]  # the second was throttled
    kept = [u["partial_image"]["b64_json"] for u in (updates[0], updates[2])]
    assert thumbnailed == kept  # and never decoded
