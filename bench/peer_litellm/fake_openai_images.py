"""A minimal fake of OpenAI's image API (gpt-image-1 shape) as a raw ASGI app: the floor both
proxies stand on. Every answer is built once at start, so the fake costs next to nothing.

* ``POST /v1/images/generations`` -> ``{"created", "data": [{"b64_json"}], "usage"}``; with
  ``"stream": true`` the SSE events OpenAI sends (``image_generation.partial_image`` ×
  ``partial_images``, then ``image_generation.completed``);
* ``POST /v1/images/edits`` (multipart, drained) -> the same JSON answer;
* ``GET /v1/models``.

The image is a 64×64 PNG, or a ~1 MB one (incompressible noise) when the prompt contains
``[1mb]`` (the body is searched for the marker: LiteLLM and pixelpipe pass the prompt on as is).

    .venv/bin/python bench/peer_litellm/fake_openai_images.py --port 18001 [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from PIL import Image

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
BIG_MARKER = b"[1mb]"
USAGE = {
    "input_tokens": 10,
    "output_tokens": 272,
    "total_tokens": 282,
    "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
}


def small_png() -> bytes:
    img = Image.new("RGB", (64, 64))
    img.putdata([(x * 4, y * 4, (x ^ y) * 4 % 256) for y in range(64) for x in range(64)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def noise_png(target_bytes: int) -> bytes:
    """An RGB PNG of random pixels (PNG cannot compress them) of about ``target_bytes``."""
    side = int((target_bytes / 3) ** 0.5)
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, format="PNG")
    return buf.getvalue()


class Answers:
    """The pre-serialised bodies for one image."""

    def __init__(self, png: bytes) -> None:
        b64 = base64.b64encode(png).decode()
        self.size = len(png)
        self.tail = json.dumps({"data": [{"b64_json": b64}], "usage": USAGE})[1:].encode()
        echo = {"background": "opaque", "output_format": "png", "quality": "low", "size": "auto"}
        self.partial = [
            _event(
                "image_generation.partial_image",
                {"b64_json": b64, "partial_image_index": i, **echo},
            )
            for i in range(3)
        ]
        self.completed = _event(
            "image_generation.completed", {"b64_json": b64, **echo, "usage": USAGE}
        )

    def json(self) -> bytes:
        return b'{"created":' + str(int(time.time())).encode() + b"," + self.tail


def _event(kind: str, fields: dict[str, Any]) -> bytes:
    data = json.dumps({"type": kind, **fields, "created_at": 1700000000}).encode()
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


SMALL = Answers(small_png())
BIG: Answers | None = None  # built at start (a second or so of Pillow work)
LATENCY_S = 0.0
MODELS = json.dumps(
    {"object": "list", "data": [{"id": "gpt-image-1", "object": "model", "owned_by": "system"}]}
).encode()


async def _body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        more = msg.get("more_body", False)
    return b"".join(chunks)


async def _send(send: Send, status: int, body: bytes, ctype: bytes = b"application/json") -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Send, answers: Answers, partials: int) -> None:
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for i in range(partials):
        await send({"type": "http.response.body", "body": answers.partial[i], "more_body": True})
    await send({"type": "http.response.body", "body": answers.completed})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    method, path = scope["method"], scope["path"].rstrip("/").removeprefix("/v1")
    if method == "GET" and path in ("/models", "/health", ""):
        await _send(send, 200, MODELS)
        return
    if method != "POST" or path not in ("/images/generations", "/images/edits"):
        await _body(receive)
        await _send(send, 404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')
        return
    raw = await _body(receive)
    answers = BIG if BIG is not None and BIG_MARKER in raw else SMALL
    if LATENCY_S > 0:
        await asyncio.sleep(LATENCY_S)
    if path == "/images/generations" and b'"stream"' in raw:
        body = json.loads(raw)
        if body.get("stream") is True:
            await _stream(send, answers, min(3, int(body.get("partial_images") or 0)))
            return
    await _send(send, 200, answers.json())


def main() -> None:
    global BIG, LATENCY_S
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18001)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--big-bytes", type=int, default=1_000_000, help="the [1mb] image's size")
    a = ap.parse_args()
    LATENCY_S = a.latency_ms / 1000
    BIG = Answers(noise_png(a.big_bytes))
    import uvicorn

    uvicorn.run(app, host=a.host, port=a.port, log_level="warning", access_log=False, backlog=4096)


if __name__ == "__main__":
    main()
