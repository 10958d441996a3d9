"""Each event of ``GET /v1/generations/{id}/events`` shows the job as it was at that event, live
and on replay, through a real ``pixelpipe serve``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import follow_sse
from tests.support.serve import Server

pytestmark = pytest.mark.slow


def check_moments(events: list[dict]) -> list[str]:
    """Every status event's job is the job of that moment; returns the statuses in order."""
    statuses = []
    for ev in events:
        if ev.get("event") != "status":
            continue
        data, job = ev["data"], ev["data"]["job"]
        statuses.append(data["status"])
        assert job["status"] == data["status"], ev
        assert job["attempt"] == data["attempt"], ev
        if data["status"] == "succeeded":
            assert job["image"] is not None and job["timings"]["finished_at"] is not None, ev
        else:
            assert job["image"] is None and job["timings"]["finished_at"] is None, ev
            assert job["cost"]["status"] == "pending", ev
    return statuses


def test_live_and_replayed_events_carry_the_job_of_their_moment(tmp_path: Path) -> None:
    with Server(tmp_path / "data", {"PIXELPIPE_PREVIEW_LATENCY_MS": "400"}) as srv:
        body = {"prompt": "a snapshot of a heron", "model": "preview", "seed": 3, "size": "64x64"}
        r = httpx.post(f"{srv.url}/v1/generations", json=body, timeout=10)
        assert r.status_code == 202, r.text
        events_url = f"{srv.url}/v1/generations/{r.json()['id']}/events"

        live = follow_sse(events_url)
        statuses = check_moments(live)
        assert statuses[0] == "queued" and statuses[-1] == "succeeded"
        assert {"submitting", "waiting", "fetching", "storing"} <= set(statuses)

        replay = follow_sse(events_url)  # the whole history, after the job finished
        assert check_moments(replay) == statuses
        assert [e["id"] for e in replay] == [e["id"] for e in live]

        resumed = follow_sse(events_url, last_event_id=live[0]["id"])  # a reconnect
        assert check_moments(resumed) == statuses[1:]
