"""A waiting job's place, live over SSE, through a real ``pixelpipe serve``: its stream gets a
``progress`` event each time the jobs ahead of it finish (usecases/queue_watch.py), not only on
connect and on its own status changes."""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.serve import Server, run_cli


def _follow(url: str, headers: dict[str, str], into: queue.Queue[tuple[str, Any]]) -> None:
    """Each SSE event of the stream at ``url`` as (event, data), until the stream ends."""
    kind, event_id = "", None
    try:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(60.0)) as resp:
            for line in resp.iter_lines():
                if line.startswith("id:"):
                    event_id = int(line.removeprefix("id:"))
                elif line.startswith("event:"):
                    kind = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    into.put((kind, {**json.loads(line.removeprefix("data:")), "_id": event_id}))
                elif not line:
                    event_id = None
    except httpx.HTTPError as e:  # the server stopped (a failed test): the main thread says why
        into.put(("broken", str(e)))
    into.put(("end", None))


def _place(kind: str, data: Any) -> int | None:
    progress = data if kind == "progress" else (data.get("job") or {}).get("progress") or {}
    position = progress.get("queue_position")
    return position if isinstance(position, int) else None


def _next_place(events: queue.Queue[tuple[str, Any]], seen: list[tuple[str, Any]]) -> int:
    """The next event that shows a place (within 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        kind, data = events.get(timeout=max(0.1, deadline - time.monotonic()))
        seen.append((kind, data))
        assert kind not in ("end", "broken"), seen
        position = _place(kind, data)
        if position is not None:
            return position


def test_a_waiting_jobs_stream_shows_its_place_moving_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = run_cli(
        "keys", "create", "--scopes", "generate,read,admin", "--json", PIXELPIPE_DATA_DIR=str(data)
    )
    assert made.returncode == 0, made.stderr
    headers = {"Authorization": f"Bearer {json.loads(made.stdout)['key']}"}
    with Server(data) as srv:
        # the provider drained by the operator: the jobs wait in line, in the order they came
        paused = httpx.post(f"{srv.url}/v1/admin/queue/pauses/preview", headers=headers, json={})
        assert paused.status_code == 200, paused.text
        body = {"prompt": "a lighthouse", "size": "64x64"}
        ids = [
            httpx.post(f"{srv.url}/v1/generations", json={**body, "seed": s}, headers=headers)
            .raise_for_status()
            .json()["id"]
            for s in range(4)
        ]
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        url = f"{srv.url}/v1/generations/{ids[3]}/events"
        threading.Thread(target=_follow, args=(url, headers, events), daemon=True).start()
        seen: list[tuple[str, Any]] = []
        assert _next_place(events, seen) == 4  # on connect: the status event's job
        for ahead, place in ((ids[0], 3), (ids[1], 2)):  # the jobs ahead of it finish
            httpx.post(f"{srv.url}/v1/generations/{ahead}/cancel", headers=headers)
            assert _next_place(events, seen) == place, seen
        moved = [d for k, d in seen if k == "progress"]
        assert [d["queue_position"] for d in moved] == [3, 2], seen  # once per move, no repeats
        # a place is not a stored event: no SSE id of its own (Last-Event-ID stays on the last
        # stored one), and the stored events' ids never repeat
        assert [d["_id"] for d in moved] == [None, None], seen
        # resumed: the job ahead runs, then this one; its stream ends with its image
        assert httpx.delete(f"{srv.url}/v1/admin/queue/pauses/preview", headers=headers).is_success
        deadline = time.monotonic() + 60
        last = ("", None)
        while last[0] != "end":
            last = events.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(last)
        stored = [d["_id"] for k, d in seen if k not in ("end", "broken") and d["_id"] is not None]
        assert stored == sorted(set(stored)), seen
        statuses = [d["status"] for k, d in seen if k == "status"]
        assert statuses[-1] == "succeeded", seen
