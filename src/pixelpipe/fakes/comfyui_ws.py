"""The fake ComfyUI's WebSocket clients and how messages reach them (``server.PromptServer``).

A client connects to ``/ws?clientId=<sid>`` (no clientId: the server makes one, ``uuid4().hex``;
a second socket with the same id replaces the first). It is sent ``{"type": "status", "data":
{"status": {"exec_info": {"queue_remaining": N}}, "sid": sid}}`` first, and, when it is the client
of the running prompt, ``executing`` with the current node. A first text message ``{"type":
"feature_flags", "data": {...}}`` stores the client's flags and is answered with the server's.

``send(event, data, sid)``: ``sid=None`` broadcasts to every socket; a sid that is not connected
gets nothing (ComfyUI drops it; the message is not kept). Binary frames are a big-endian u32
event type then the payload: ``PREVIEW_IMAGE`` (1) = u32 image type (1 JPEG, 2 PNG) + bytes, sent
to clients that did not declare ``supports_preview_metadata``; ``PREVIEW_IMAGE_WITH_METADATA``
(4) = u32 length + JSON metadata ``{node_id, prompt_id, display_node_id, parent_node_id,
real_node_id, image_type}`` + bytes, sent to clients that did (comfy_execution/progress.py
``WebUIProgressHandler``; main.py ``hijack_progress`` sends type 1 only to the others).
"""

from __future__ import annotations

import contextlib
import json
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
IMAGE_TYPES = {"JPEG": 1, "PNG": 2}
SERVER_FEATURES = {"supports_preview_metadata": True, "max_upload_size": 104857600}


@dataclass
class Client:
    socket: WebSocket
    flags: dict[str, Any] = field(default_factory=dict)


class Hub:
    """The connected sockets, and which client's prompt is running (``client_id``)."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.client_id: str | None = None
        self.last_node_id: str | None = None

    async def serve(self, ws: WebSocket, status: dict[str, Any]) -> None:
        await ws.accept()
        sid = ws.query_params.get("clientId") or uuid.uuid4().hex
        client = Client(ws)
        self.clients[sid] = client
        try:
            await self.send("status", {"status": status, "sid": sid}, sid)
            if self.client_id == sid and self.last_node_id is not None:
                await self.send("executing", {"node": self.last_node_id}, sid)
            await self._receive(client, sid)
        except WebSocketDisconnect:
            pass
        finally:
            if self.clients.get(sid) is client:
                del self.clients[sid]

    async def _receive(self, client: Client, sid: str) -> None:
        first = True
        while True:
            text = await client.socket.receive_text()
            with contextlib.suppress(ValueError, AttributeError):
                message = json.loads(text)
                if first and message.get("type") == "feature_flags":
                    client.flags = dict(message.get("data") or {})
                    await self.send("feature_flags", dict(SERVER_FEATURES), sid)
            first = False

    def wants_metadata(self, sid: str | None) -> bool:
        client = self.clients.get(sid) if sid is not None else None
        return bool(client and client.flags.get("supports_preview_metadata"))

    async def send(self, event: str, data: dict[str, Any], sid: str | None = None) -> None:
        await self._deliver(sid, text=json.dumps({"type": event, "data": data}))

    async def send_preview(
        self, image: bytes, image_type: str, metadata: dict[str, Any], sid: str | None
    ) -> None:
        """One preview frame to ``sid``, in the form that client asked for."""
        if self.wants_metadata(sid):
            meta = json.dumps({**metadata, "image_type": f"image/{image_type.lower()}"}).encode()
            payload = struct.pack(">I", len(meta)) + meta + image
            frame = struct.pack(">I", PREVIEW_IMAGE_WITH_METADATA) + payload
        else:
            frame = struct.pack(">II", PREVIEW_IMAGE, IMAGE_TYPES[image_type]) + image
        await self._deliver(sid, data=frame)

    async def _deliver(self, sid: str | None, *, text: str = "", data: bytes = b"") -> None:
        targets = (
            list(self.clients.values())
            if sid is None
            else [c for c in [self.clients.get(sid)] if c is not None]
        )
        for client in targets:
            with contextlib.suppress(Exception):  # send_socket_catch_exception
                if data:
                    await client.socket.send_bytes(data)
                else:
                    await client.socket.send_text(text)

    async def close_all(self) -> None:
        """The server died: every socket closes."""
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                await client.socket.close(code=1011)
        self.client_id = None
        self.last_node_id = None
