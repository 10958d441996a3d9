"""Streams across a ``pixelpipe serve`` restart (issue 17), with real subprocesses: the server is
SIGKILLed while a job draws (the offline preview, 4 s) and two readers follow it, then started
again on the same port and data directory.

- ``GET /v1/generations/{id}/events`` reconnected with ``Last-Event-ID`` (what EventSource and
  ``Client.stream()`` send) resumes right after the last event it had: no event twice, none
  lost, in order — what the reader saw before and after the restart is exactly the job's full
  replay, ending with ``succeeded`` (the live previews are not in a replay once the job ended).
- An OpenAI stream (``stream=true``) cannot resume: the SDK raises on the dropped connection.
  Sending the same request again attaches to the same generation while it runs (single-flight)
  and streams from where the run is — or, once it ended, is a cache hit: the completed event at
  once. Either way the image is the one stored, and the run is billed once.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.selfhosted.server_rows import image_bytes, ledger_entries, wait_done
from tests.support.serve import Server

pytestmark = pytest.mark.slow

ENV = {
    "PIXELPIPE_PREVIEW_LATENCY_MS": "4000",
    "PIXELPIPE_LEASE_S": "2",
    "PIXELPIPE_TEST_MODE": "true",
}
BODY = {"prompt": "a lighthouse, across a restart", "seed": 5, "size": "64x64"}


def read_sse(resp: httpx.Response, stop: Any = None) -> list[dict[str, Any]]:
    """The events of an open SSE response (``id``, ``event``, ``data``) until it ends, or until
    ``stop(events)`` says so."""
    events: list[dict[str, Any]] = []
    cur: dict[str, Any] = {}
    for line in resp.iter_lines():
        if line.startswith("id:"):
            cur["id"] = int(line[3:].strip())
        elif line.startswith("event:"):
            cur["event"] = line[6:].strip()
        elif line.startswith("data:"):
            cur["data"] = json.loads(line[5:].strip())
        elif not line and "data" in cur:
            events.append(cur)
            cur = {}
            if stop is not None and stop(events):
                break
    return events


def replay(srv: Server, job_id: str, last_event_id: int | None = None) -> list[dict[str, Any]]:
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    url = f"{srv.url}/v1/generations/{job_id}/events"
    with httpx.stream("GET", url, headers=headers, timeout=60) as resp:
        assert resp.status_code == 200, resp.read()
        return read_sse(resp)


def shape(event: dict[str, Any]) -> tuple[int, str, str | None]:
    """An event's id, name and status (progress: its state, if any)."""
    data = event["data"]
    return event["id"], event["event"], data.get("status") or data.get("state")


def openai_client(srv: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{srv.url}/v1", api_key="unused", max_retries=0, timeout=60)


def test_streams_across_a_restart(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", ENV).start(timeout_s=120)
    try:
        job_id = httpx.post(f"{srv.url}/v1/generations", json=BODY, timeout=30).json()["id"]
        # the OpenAI stream of another request, in a thread: it loses its connection
        dropped: dict[str, Any] = {"events": []}

        def openai_reader() -> None:
            raw = openai_client(srv).images.with_raw_response.generate(
                prompt="a heron, across a restart",
                size="64x64",
                stream=True,
                partial_images=3,
                extra_body={"seed": 6},
            )
            dropped["generation"] = raw.headers["x-pixelpipe-generation-ids"]
            try:
                for event in raw.parse():
                    dropped["events"].append(event.type)
            except (openai.APIError, httpx.HTTPError) as exc:  # the transport's, as it is
                dropped["error"] = type(exc).__name__

        reader = threading.Thread(target=openai_reader)
        reader.start()
        url = f"{srv.url}/v1/generations/{job_id}/events"
        with httpx.stream("GET", url, timeout=60) as resp:  # until its first preview
            before = read_sse(resp, lambda evs: "preview" in evs[-1]["data"])
        deadline = time.monotonic() + 30
        while not dropped["events"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dropped["events"] == ["image_generation.partial_image"], dropped
        srv.kill()  # mid-run: a crash, then a restart
        reader.join(30)
        assert "error" in dropped and "image_generation.completed" not in dropped["events"]
    finally:
        srv.stop()

    with Server(tmp_path / "data", ENV, port=srv.port).start(timeout_s=120) as again:
        after = replay(again, job_id, last_event_id=before[-1]["id"])
        full = replay(again, job_id)
        ids = [e["id"] for e in before + after]
        assert ids == sorted(set(ids)), ids  # each once, in order
        # none lost: exactly the job's replay (which, the job over, no longer carries the
        # previews and ETAs that went out live)
        assert [shape(e) for e in before + after] == [shape(e) for e in full]
        assert (after[-1]["event"], after[-1]["data"]["status"]) == ("status", "succeeded")

        # the OpenAI request again: the same generation, its partials, then the stored image
        raw = openai_client(again).images.with_raw_response.generate(
            prompt="a heron, across a restart",
            size="64x64",
            stream=True,
            partial_images=3,
            extra_body={"seed": 6},
        )
        events = list(raw.parse())
        assert events[-1].type == "image_generation.completed"
        assert {e.type for e in events[:-1]} <= {"image_generation.partial_image"}
        first = wait_done(again, dropped["generation"])  # finished after the restart
        assert base64.b64decode(events[-1].b64_json) == image_bytes(again, first)
        # attached to it while it ran (the same generation), or, when it had ended, a cache hit
        attached = raw.headers["x-pixelpipe-generation-ids"]
        if attached != dropped["generation"]:
            assert raw.headers["x-pixelpipe-cached"] == "true", raw.headers
            (hit,) = ledger_entries(again.data_dir, attached)  # nothing ran: a cache entry
            assert (hit["provider"], hit["micros"]) == ("cache", 0), hit
        for job in (job_id, dropped["generation"]):
            states = [e["state"] for e in ledger_entries(again.data_dir, job)]
            assert states.count("billed") == 1, states  # the run that made the image, once
    assert all(b["id"] > a["id"] for a, b in pairwise(full))
