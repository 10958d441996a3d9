"""A fake OpenAI image API that costs (almost) nothing per image, for ``stream_latency.py --fake
light``: ``POST /v1/images/generations`` with ``stream=true`` answers OpenAI's image streaming
(``image_generation.partial_image`` × ``partial_images``, then ``image_generation.completed`` with
``usage``), the events spread evenly over ``--latency`` seconds, like ``pixelpipe fake-providers``'
OpenAI — but every picture is drawn ONCE at start: one PNG (the full fake's drawing, 1024×1024
unless ``--size``) and its blurred partials. Each completed image is that PNG made unique by a
``tEXt`` chunk with a counter (a byte splice, no encoding), so every request still gives pixelpipe
a new image to check and store. The full fake spends ~0.4–1 s of CPU per image (drawing and
blurring 1024×1024): at 64 streams that, not pixelpipe, is what a shared machine measures.

Run: ``python bench/stream_light_fake.py --port P [--latency 6] [--size 1024x1024]`` (serves on
127.0.0.1; every answer is that size, whatever was asked).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pixelpipe.fakes.openai_stream import blurred
from pixelpipe.fakes.render import render

USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"text_tokens": 12, "image_tokens": 0},
    "output_tokens": 272,
    "total_tokens": 284,
}
MAX_PARTIALS = 3


def unique_png(png: bytes, n: int) -> bytes:
    """``png`` with a ``tEXt`` chunk ``pixelpipe-bench=<n>`` before its ``IEND``."""
    data = b"pixelpipe-bench\x00" + str(n).encode()
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF)
    return png[:-12] + chunk + png[-12:]


class LightFake:
    def __init__(self, latency_s: float, size: str = "1024x1024") -> None:
        self.latency_s = latency_s
        width, height = (int(side) for side in size.split("x"))
        self.final = render("a lighthouse, drawn once", 7, width, height, "png")
        self.partials = {
            total: [blurred(self.final, "png", i, total) for i in range(total)]
            for total in range(1, MAX_PARTIALS + 1)
        }
        self.count = itertools.count(1)
        self.app = Starlette(
            routes=[Route("/v1/images/generations", self.generate, methods=["POST"])]
        )

    async def generate(self, request: Request) -> Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"error": {"message": "no key", "code": "invalid_api_key"}}, 401)
        body: dict[str, Any] = orjson.loads(await request.body())
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "this fake only streams"}}, 400)
        partials = int(body.get("partial_images") or 0)
        echo = {
            "background": "opaque",
            "output_format": "png",
            "quality": body.get("quality", "medium"),
            "size": body.get("size", "1024x1024"),
        }
        return StreamingResponse(self._events(partials, echo), media_type="text/event-stream")

    async def _events(self, partials: int, echo: dict[str, Any]) -> AsyncIterator[bytes]:
        step = self.latency_s / (partials + 1)
        for index in range(partials):
            await asyncio.sleep(step)
            fields = {"b64_json": self.partials[partials][index], "partial_image_index": index}
            yield event("image_generation.partial_image", fields | echo)
        await asyncio.sleep(step)
        final = base64.b64encode(unique_png(self.final, next(self.count))).decode()
        yield event("image_generation.completed", {"b64_json": final, **echo, "usage": USAGE})


def event(kind: str, fields: dict[str, Any]) -> bytes:
    data = orjson.dumps({"type": kind, **fields, "created_at": int(time.time())})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--latency", type=float, default=6.0)
    p.add_argument("--size", default="1024x1024", help="the pictures' WxH")
    o = p.parse_args()
    fake = LightFake(o.latency, o.size)
    print(f"ready: {len(fake.final)} byte PNG", flush=True)
    uvicorn.run(fake.app, host="127.0.0.1", port=o.port, log_level="warning")


if __name__ == "__main__":
    main()
