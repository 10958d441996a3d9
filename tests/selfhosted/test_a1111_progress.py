"""Live progress of AUTOMATIC1111 jobs (issue 14): its txt2img call lasts the whole run, so the
worker watches ``/sdapi/v1/progress`` beside it (``worker/progress.py``) and writes the job's
progress events — seen here through ``GET /v1/generations/{id}/events`` of a real app with its
embedded worker, against the protocol-faithful fake over real sockets. Then the writer's rules
on their own: only changes, at most two a second, a preview once, never an error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

from pixelpipe.api.app import create_app
from pixelpipe.events.local import LocalNotifier
from pixelpipe.fakes.a1111 import A1111Behaviour, FakeA1111
from pixelpipe.fakes.server import serve_app
from pixelpipe.jobs.memory.store import MemoryJobStore
from pixelpipe.settings import load_settings
from pixelpipe.worker.progress import MIN_INTERVAL_S, write_progress

STEP_S = 0.04
STEPS = 30  # 1.2 s a run: the watcher (every 0.5 s) sees it two or three times
FILE = """\
[backends.sd_box]
kind = "a1111"
url = "{url}"
usd_per_gpu_hour = 1.2

[models.sd-house]
label = "SD house"
formats = ["png"]
aspect_ratios = {{ "1:1" = [512, 512] }}
steps = {{ min = 1, max = 50, default = {steps} }}
typical_latency_s = 1.0
backends = ["sd_box"]
"""


async def follow(client: httpx.AsyncClient, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The job's SSE stream to its end: (event, data) in order."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    async with client.stream("GET", f"/v1/generations/{job_id}/events") as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:])))
    return events


def progress_of(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [data for name, data in events if name == "progress"]


async def test_a1111_jobs_stream_their_progress_then_succeed(tmp_path: Path) -> None:
    fake = FakeA1111(behaviour=A1111Behaviour(step_s=STEP_S))
    async with serve_app(fake.app) as fake_url:
        catalog = tmp_path / "catalog.toml"
        catalog.write_text(FILE.format(url=fake_url, steps=STEPS))
        settings = load_settings(data_dir=tmp_path / "data", catalog_path=catalog)
        app = create_app(settings, worker=True)
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            ids = []
            for seed in (1, 2):  # the second waits in line for the backend's one slot
                body = {"prompt": "a heron", "model": "sd-house", "seed": seed}
                resp = await client.post("/v1/generations", json=body)
                assert resp.status_code == 202, resp.text
                ids.append(resp.json()["id"])
            first, second = await asyncio.gather(*(follow(client, i) for i in ids))
            stored = await app.state.services.store.events_since(ids[0])

    for events in (first, second):
        name, last = events[-1]
        assert (name, last["status"]) == ("status", "succeeded"), events[-1]
        assert last["job"]["image"] is not None
        running = [p for p in progress_of(events) if p.get("state") == "running"]
        assert len(running) >= 2, events
        percents = [p["percent"] for p in running]
        assert percents == sorted(percents) and 0 < percents[0] < percents[-1] <= 100
        assert {p["steps"] for p in running} == {STEPS}
        assert all(p["eta_s"] >= 0 and 0 <= p["step"] <= STEPS for p in running), running
        previews = [p["preview"] for p in running if "preview" in p]
        assert previews and all(u.startswith("data:image/png;base64,") for u in previews)
        assert len(set(previews)) == len(previews)  # each preview written once
        # while its submit was in flight, before it succeeded
        statuses = [d["status"] for n, d in events if n == "status"]
        assert statuses[-4:] == ["submitting", "fetching", "storing", "succeeded"], statuses
        names = [d.get("state", n) if n == "progress" else d["status"] for n, d in events]
        at = [i for i, name in enumerate(names) if name == "running"]
        assert names.index("submitting") < at[0] and at[-1] < names.index("fetching"), names
    # the second job waited for the first one's run (the backend's one slot): first in line
    assert [p["queue_position"] for p in progress_of(second) if "queue_position" in p] == [1]
    # at most two a second
    times = [e.created_at for e in stored if e.type == "progress"]
    assert all(b - a >= MIN_INTERVAL_S - 0.05 for a, b in pairwise(times))


async def _updates(items: list[dict[str, Any]], fail: bool = False) -> AsyncGenerator[dict, None]:
    for item in items:
        yield item
    if fail:
        raise RuntimeError("the progress endpoint broke")


class Clock:
    def __init__(self, times: list[float]) -> None:
        self.times = iter(times)

    def __call__(self) -> float:
        return next(self.times)


async def test_only_changes_at_most_two_a_second_and_a_preview_once() -> None:
    store = MemoryJobStore(LocalNotifier())
    a = {"state": "running", "percent": 10.0, "preview": "data:image/png;base64,AAAA"}
    b = {"state": "running", "percent": 20.0, "preview": "data:image/png;base64,AAAA"}
    c = {"state": "running", "percent": 30.0, "preview": "data:image/png;base64,BBBB"}
    d = {"state": "running", "percent": 40.0}
    # a; a again (unchanged); b too soon (0.2 s); b; c; d
    clock = Clock([0.0, 0.5, 0.7, 1.0, 1.5, 2.0])
    await write_progress(store, "job_1", _updates([a, a, b, b, c, d]), clock)
    written = [e.data for e in await store.events_since("job_1")]
    assert written == [a, {"state": "running", "percent": 20.0}, c, d]


async def test_a_failing_watch_ends_quietly() -> None:
    store = MemoryJobStore(LocalNotifier())
    one = {"state": "queued", "percent": 0.0, "queue_position": 2}
    await write_progress(store, "job_1", _updates([one], fail=True))  # no exception
    assert [e.data for e in await store.events_since("job_1")] == [one]
