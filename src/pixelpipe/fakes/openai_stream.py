"""Streaming in the fake OpenAI: ``stream=true`` on ``POST /v1/images/generations`` (GPT image
models), as OpenAI sends it (providers.md §3.2/§3.3, openai-python's ``ImageGenStreamEvent``)::

    event: image_generation.partial_image
    data: {"type": "image_generation.partial_image", "b64_json", "partial_image_index",
           "background", "output_format", "quality", "size", "created_at"}
    …
    event: image_generation.completed
    data: {"type": "image_generation.completed", "b64_json", "background", "output_format",
           "quality", "size", "created_at", "usage"}

``partial_images`` (0–3, default 0) partial images — the final picture blurred less and less, at
full size and in the output format — are spread evenly over the fake's ``latency_s``, the completed
event at its end. A prompt refused by moderation is a 400 before the stream, as without streaming.
With ``n`` > 1 the fake refuses streaming (what OpenAI does there is not documented: UNCONFIRMED).
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from PIL import Image, ImageFilter
from starlette.responses import StreamingResponse

from pixelpipe.fakes.openai_rules import InvalidRequest

MAX_PARTIAL_IMAGES = 3
_ECHOED = ("background", "output_format", "quality", "size")
_PIL = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
Sleep = Callable[[float], Awaitable[bool]]


def stream_partials(body: dict[str, Any]) -> int | None:
    """The number of partial images a streamed request asks for; None when it does not stream.
    Raises :class:`InvalidRequest` as OpenAI answers a bad ``partial_images``."""
    if body.get("stream") is not True:
        return None
    partials = body.get("partial_images", 0)
    if partials is None:
        partials = 0
    if not isinstance(partials, int) or isinstance(partials, bool):
        raise InvalidRequest(
            f"Invalid type for 'partial_images': expected an integer, but got {partials!r}.",
            "partial_images",
            "invalid_type",
        )
    if not 0 <= partials <= MAX_PARTIAL_IMAGES:
        raise InvalidRequest(
            f"Invalid 'partial_images': expected a value from 0 to {MAX_PARTIAL_IMAGES}, but got "
            f"{partials} instead.",
            "partial_images",
            "invalid_value",
        )
    if int(body.get("n", 1)) != 1:
        raise InvalidRequest("Streaming is only supported with n=1.", "n", "invalid_value")
    return partials


def stream_response(
    answer: dict[str, Any], partials: int, latency_s: float, sleep: Sleep
) -> StreamingResponse:
    """The events of a generation whose non-streamed ``answer`` (one GPT image item) is given."""
    return StreamingResponse(
        _events(answer, partials, latency_s, sleep),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


async def _events(
    answer: dict[str, Any], partials: int, latency_s: float, sleep: Sleep
) -> AsyncIterator[bytes]:
    final = str(answer["data"][0]["b64_json"])
    echo = {name: answer[name] for name in _ECHOED}
    step = latency_s / (partials + 1)
    for index in range(partials):
        if not await sleep(step):
            return  # the fake is closing
        partial = blurred(base64.b64decode(final), echo["output_format"], index, partials)
        fields = {"b64_json": partial, "partial_image_index": index, **echo}
        yield event("image_generation.partial_image", fields)
    if not await sleep(step):
        return
    yield event("image_generation.completed", {"b64_json": final, **echo, "usage": answer["usage"]})


def blurred(image: bytes, fmt: str, index: int, partials: int) -> str:
    """Partial ``index`` of ``partials``: ``image`` blurred, less for each later one (base64)."""
    try:
        with Image.open(io.BytesIO(image)) as im:
            picture = im.convert("RGB")
    except Exception:  # a hostile output (security tests): pass it on as it is
        return base64.b64encode(image).decode()
    radius = max(picture.size) / 16 * (partials - index) / partials
    buf = io.BytesIO()
    picture.filter(ImageFilter.GaussianBlur(radius)).save(buf, _PIL.get(fmt, "PNG"))
    return base64.b64encode(buf.getvalue()).decode()


def event(kind: str, fields: dict[str, Any]) -> bytes:
    data = orjson.dumps({"type": kind, **fields, "created_at": int(time.time())})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"
