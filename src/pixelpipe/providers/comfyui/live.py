"""The live side of a ComfyUI backend: one WebSocket per backend and process (``/ws?clientId=``)
that keeps, per prompt of ours, the latest sampler ``progress {value, max}`` and the latest
preview frame, for :meth:`~.client.ComfyUIProvider.poll` to report.

ComfyUI sends a prompt's messages only to the client that queued it (its ``client_id``): every
prompt this process queues names :attr:`LiveFeed.client_id`. Binary frames are previews: a
big-endian u32 event type, then for ``PREVIEW_IMAGE`` (1) a u32 image type (1 JPEG, 2 PNG) and
the bytes (the prompt is the one running: the last ``executing``/``progress`` named it), or for
``PREVIEW_IMAGE_WITH_METADATA`` (4, sent once the client declares ``supports_preview_metadata``
in its first message, as this one does) a u32 length, JSON metadata naming the prompt, the bytes.

The socket is a courtesy: it reconnects with a growing pause (:data:`RECONNECT_S`) while the
server is away, and the job's state always comes from ``/history`` and ``/queue`` (a job never
fails because of it; while it is down, poll reports no step figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from pixelpipe.providers.previews import preview_url

log = logging.getLogger("pixelpipe.providers.comfyui")

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
IMAGE_TYPES = {1: "image/jpeg", 2: "image/png"}
# a preview larger than this is left out of the progress events (each is kept with the job and
# replayed by its event stream), as for AUTOMATIC1111's
RECONNECT_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # pauses before reconnecting, the last one repeated
TRACKED = 256  # prompts remembered at most (the oldest forgotten first)
FEATURES = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}


@dataclass
class Live:
    """What the socket said of one prompt."""

    step: int = 0
    steps: int = 0
    preview: bytes | None = None
    preview_type: str = ""
    frames: int = 0  # previews received so far
    shown: int = 0  # the frame last reported (a preview is reported once)
    last: dict[str, Any] | None = None  # the last report, given again while nothing changed


class LiveFeed:
    """The WebSocket of one backend (see the module docstring). :meth:`start` it from a running
    event loop; :meth:`report` what it knows of a prompt."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None) -> None:
        self.client_id = uuid.uuid4().hex  # this process's: ComfyUI routes our prompts' messages
        scheme, _, rest = base_url.rstrip("/").partition("://")
        ws_scheme = "wss" if scheme == "https" else "ws"
        self.url = f"{ws_scheme}://{rest}/ws?clientId={self.client_id}"
        self.connected = False
        self._headers = headers or {}
        self._prompts: OrderedDict[str, Live] = OrderedDict()
        self._running: str | None = None  # the prompt the last message named
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Connect in the background (again, if the task ended); idempotent."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    def report(self, pid: str) -> dict[str, Any]:
        """``pid``'s figures as progress (``percent``, ``step``, ``steps``) and its latest preview
        as a ``data:`` URL (only the first time it is reported, and only when small); {} when
        the socket said nothing of it."""
        live = self._prompts.get(pid)
        if live is None or not live.steps:
            return {}
        out: dict[str, Any] = {
            "percent": round(100 * live.step / live.steps, 1),
            "step": live.step,
            "steps": live.steps,
        }
        last = live.last
        if live.frames == live.shown and last is not None and {k: last.get(k) for k in out} == out:
            return last  # unchanged: the same report (no new progress event)
        if live.preview is not None and live.frames != live.shown:
            live.shown = live.frames
            if (url := preview_url(live.preview, live.preview_type)) is not None:
                out["preview"] = url
        live.last = out
        return out

    def forget(self, pid: str) -> None:
        self._prompts.pop(pid, None)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        pause = 0
        while True:
            try:
                async with connect(
                    self.url, additional_headers=self._headers, open_timeout=5, max_size=2**24
                ) as ws:
                    self.connected, pause = True, 0
                    await ws.send(json.dumps(FEATURES))
                    async for message in ws:
                        self.take(message)
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.debug("comfyui socket %s: %s", self.url, type(exc).__name__)
            finally:
                self.connected = False
            await asyncio.sleep(RECONNECT_S[min(pause, len(RECONNECT_S) - 1)])
            pause += 1

    def take(self, message: str | bytes) -> None:
        """One message from the socket (text or a binary frame)."""
        if isinstance(message, bytes):
            self._frame(message)
            return
        try:
            parsed = json.loads(message)
        except ValueError:
            return
        data = parsed.get("data") if isinstance(parsed, dict) else None
        if isinstance(data, dict) and isinstance(data.get("prompt_id"), str):
            self._event(str(parsed.get("type")), data["prompt_id"], data)

    def _event(self, event: str, pid: str, data: dict[str, Any]) -> None:
        self._running = pid
        live = self._live(pid)
        if event == "progress" and isinstance(data.get("max"), int) and data["max"] > 0:
            live.step, live.steps = int(data.get("value") or 0), int(data["max"])

    def _frame(self, frame: bytes) -> None:
        if len(frame) < 8:
            return
        (event,) = struct.unpack(">I", frame[:4])
        if event == PREVIEW_IMAGE and self._running is not None:
            (image_type,) = struct.unpack(">I", frame[4:8])
            self._preview(self._running, frame[8:], IMAGE_TYPES.get(image_type, "image/jpeg"))
        elif event == PREVIEW_IMAGE_WITH_METADATA:
            (size,) = struct.unpack(">I", frame[4:8])
            try:
                meta = json.loads(frame[8 : 8 + size])
            except ValueError:
                return
            pid = meta.get("prompt_id") if isinstance(meta, dict) else None
            if isinstance(pid, str):
                kind = str(meta.get("image_type") or "image/jpeg")
                self._preview(pid, frame[8 + size :], kind)

    def _preview(self, pid: str, image: bytes, kind: str) -> None:
        live = self._live(pid)
        live.preview, live.preview_type, live.frames = image, kind, live.frames + 1

    def _live(self, pid: str) -> Live:
        live = self._prompts.get(pid)
        if live is None:
            live = self._prompts[pid] = Live()
            while len(self._prompts) > TRACKED:
                self._prompts.popitem(last=False)
        return live
