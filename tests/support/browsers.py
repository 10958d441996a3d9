"""Browser tabs following jobs over SSE, the way the web page does: read the stream to the final
event; when the API process dies mid-stream, reconnect to another one with ``Last-Event-ID``."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx

TERMINAL = ("succeeded", "failed", "canceled")


@dataclass
class Follow:
    """One browser tab following one job's SSE stream."""

    job_id: str
    origin: str
    events: list[dict] = field(default_factory=list)
    final_at: float | None = None
    reconnects: int = 0


async def read_stream(
    client: httpx.AsyncClient, url: str, last_id: str | None, follow: Follow
) -> bool:
    """Read one stream to its end; True when the job's final event arrived."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    async with client.stream("GET", url, headers=headers, timeout=120) as resp:
        resp.raise_for_status()
        cur: dict = {}
        async for line in resp.aiter_lines():
            if line.startswith("id:"):
                cur["id"] = int(line[3:].strip())
            elif line.startswith("event:"):
                cur["event"] = line[6:].strip()
            elif line.startswith("data:"):
                cur["data"] = json.loads(line[5:].strip())
            elif not line and cur:
                follow.events.append(cur)
                if cur.get("event") == "status" and cur["data"]["status"] in TERMINAL:
                    follow.final_at = time.time()
                    return True
                cur = {}
    return False


async def follow_job(client: httpx.AsyncClient, follow: Follow, survivor: str) -> None:
    base = follow.origin
    while True:
        # as EventSource does: an event without an id (a live queue place) leaves the last id
        ids = [e["id"] for e in follow.events if "id" in e]
        last = str(ids[-1]) if ids else None
        try:
            if await read_stream(
                client, f"{base}/v1/generations/{follow.job_id}/events", last, follow
            ):
                return
        except (httpx.HTTPError, OSError):
            pass
        # the API process died under us (or the stream ended early): reconnect to the survivor
        follow.reconnects += 1
        base = survivor
        await asyncio.sleep(0.2)
