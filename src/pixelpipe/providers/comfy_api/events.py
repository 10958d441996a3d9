"""Live progress of a v2 job: its event stream (``GET /api/v2/jobs/{id}/events``, SSE) read in
the background while the job runs; ``poll`` reports the latest of it as the job's progress.

The stream sends ``status`` (``{status, queue_position?}``) first, then ``progress`` (``{value
0-1, step, steps, current_node, nodes_done, nodes_total}``) and ``preview`` (``{node_id,
content_type, data_base64}``, a JPEG) at most twice a second each, ``output`` per output and a
last ``status``; then it ends. It has no event ids (nothing to resume from): a stream that drops
is opened again on a later poll (after :data:`REOPEN_S`), and what it missed meanwhile is simply
not shown. A preview larger than :data:`PREVIEW_MAX_BYTES` is left out (each progress event is
kept with the job and replayed by its event stream), and a preview is handed out once.

Progress is a courtesy: the stream never fails a job, and ``poll`` (``GET /api/v2/jobs/{id}``)
stays the source of truth. comfy-api-proxy serves at most 8 streams at once (429
``too_many_streams``, ``Retry-After: 5``): a job that gets no stream is polled without one, and
asks again after the Retry-After; one provider never holds more than :data:`MAX_STREAMS`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from pixelpipe.providers.http import parse_retry_after
from pixelpipe.providers.previews import PREVIEW_MAX_BYTES

log = logging.getLogger("pixelpipe.providers.comfy_api")

REOPEN_S = 2.0  # a stream that dropped (or was refused) is opened again this much later
MAX_STREAMS = 8  # streams one provider holds at once (comfy-api-proxy serves 8 in all)
FORGET_S = 60.0  # a watch no poll asked about for this long is closed (the job moved on)
STREAM_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=5.0, pool=5.0)
TERMINAL = frozenset({"succeeded", "failed", "canceled", "expired"})


@dataclass(frozen=True, slots=True)
class SseEvent:
    name: str
    data: Mapping[str, Any]


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """The events of a ``text/event-stream`` (``event:``/``data:`` lines, a blank line ends
    one); an event whose data is not a JSON object is skipped."""
    name, data = "message", []
    async for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            if (parsed := _json_object("\n".join(data))) is not None:
                yield SseEvent(name, parsed)
            name, data = "message", []


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class Watch:
    """One job's stream and what it said last."""

    job_id: str
    status: str = ""
    queue_position: int | None = None
    percent: float | None = None
    step: int | None = None
    steps: int | None = None
    node: str | None = None
    preview: str | None = None  # a data: URL not handed out yet
    ended: bool = False  # the stream ended after the job's last status: nothing more to read
    reopen_at: float = 0.0  # monotonic: when a dropped or refused stream may be opened again
    asked_at: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    _last: dict[str, Any] = field(default_factory=dict)

    def apply(self, event: SseEvent) -> None:
        data = event.data
        if event.name == "status":
            self.status = str(data.get("status") or self.status)
            position = data.get("queue_position")
            self.queue_position = position if isinstance(position, int) else None
        elif event.name == "progress":
            self._progress(data)
        elif event.name == "preview":
            self.preview = preview_url(data) or self.preview

    def _progress(self, data: Mapping[str, Any]) -> None:
        self.status = self.status if self.status in TERMINAL else "running"
        value = data.get("value")
        if isinstance(value, int | float):
            self.percent = round(100 * min(1.0, max(0.0, float(value))), 1)
        if isinstance(data.get("step"), int) and isinstance(data.get("steps"), int):
            self.step, self.steps = int(data["step"]), int(data["steps"])
        if data.get("current_node") is not None:
            self.node = str(data["current_node"])

    def progress(self) -> dict[str, Any] | None:
        """The job's progress as the stream last told it (None before it told anything): the
        same dict again while nothing changed, so no new progress event is written for it."""
        if self.percent is None and self.status != "queued":
            return None
        if self.status == "queued":
            base: dict[str, Any] = {"state": "queued", "percent": 0}
            if self.queue_position is not None:
                base["queue_position"] = self.queue_position
        else:
            base = {"state": "running", "percent": self.percent or 0}
            if self.steps:
                base |= {"step": self.step, "steps": self.steps}
            if self.node is not None:
                base["node"] = self.node
        last = {k: v for k, v in self._last.items() if k != "preview"}
        if base == last and self.preview is None:
            return self._last
        if self.preview is not None:
            base["preview"], self.preview = self.preview, None
        self._last = base
        return base


def preview_url(data: Mapping[str, Any]) -> str | None:
    """A ``preview`` event's image as a ``data:`` URL; None when unreadable or too large."""
    raw = data.get("data_base64")
    if not isinstance(raw, str) or not raw or len(raw) > PREVIEW_MAX_BYTES * 4 // 3 + 4:
        return None
    try:
        image = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(image) > PREVIEW_MAX_BYTES:
        return None
    kind = str(data.get("content_type") or "image/jpeg")
    return f"data:{kind};base64,{raw}"


class Watches:
    """The jobs whose event streams this provider reads, by v2 job id."""

    def __init__(self, client: httpx.AsyncClient, url: Callable[[str], str], auth: str) -> None:
        self._client = client
        self._url = url
        self._headers = {"Accept": "text/event-stream"} | ({"Authorization": auth} if auth else {})
        self._watches: dict[str, Watch] = {}

    def progress(self, job_id: str) -> dict[str, Any] | None:
        """The live progress of a job still waiting or running, (re)opening its stream when it
        has none; None while the stream has said nothing."""
        now = time.monotonic()
        self._forget_idle(now)
        watch = self._watches.setdefault(job_id, Watch(job_id))
        watch.asked_at = now
        idle = watch.task is None or watch.task.done()
        if idle and not watch.ended and now >= watch.reopen_at and self._open() < MAX_STREAMS:
            watch.task = asyncio.create_task(self._read(watch), name=f"comfy-api-events-{job_id}")
        return watch.progress()

    def forget(self, job_id: str) -> None:
        """The job ended: close its stream."""
        watch = self._watches.pop(job_id, None)
        if watch is not None and watch.task is not None:
            watch.task.cancel()

    async def aclose(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        self._watches.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _open(self) -> int:
        return sum(1 for w in self._watches.values() if w.task is not None and not w.task.done())

    def _forget_idle(self, now: float) -> None:
        for job_id in [j for j, w in self._watches.items() if now - w.asked_at > FORGET_S]:
            self.forget(job_id)

    async def _read(self, watch: Watch) -> None:
        """Read the stream to its end; never raises (a failure only delays the next open)."""
        try:
            await self._stream(watch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: the job is polled without live progress
            log.debug("event stream of job %s dropped: %s", watch.job_id, type(exc).__name__)
            watch.reopen_at = time.monotonic() + REOPEN_S

    async def _stream(self, watch: Watch) -> None:
        url = self._url(watch.job_id)
        async with self._client.stream(
            "GET", url, headers=self._headers, timeout=STREAM_TIMEOUT
        ) as resp:
            if resp.status_code != 200:
                wait = parse_retry_after(resp.headers) if resp.status_code == 429 else None
                watch.reopen_at = time.monotonic() + max(REOPEN_S, wait or 0.0)
                if resp.status_code == 404:
                    watch.ended = True  # no such job: polling says what became of it
                return
            async for event in sse_events(resp.aiter_lines()):
                watch.apply(event)
        if watch.status in TERMINAL:
            watch.ended = True
        else:
            watch.reopen_at = time.monotonic() + REOPEN_S
