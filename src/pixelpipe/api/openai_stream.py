"""``stream=true`` on ``POST /v1/images/generations``: OpenAI's image streaming, as SSE.

What the official SDKs parse (``client.images.generate(..., stream=True, partial_images=N)``)::

    event: image_generation.partial_image
    data: {"type": "image_generation.partial_image", "b64_json": …, "partial_image_index": 0,
           "size": …, "quality": …, "background": …, "output_format": …, "created_at": …}

    event: image_generation.completed
    data: {"type": "image_generation.completed", "b64_json": …, "usage": {…}, …}

The job is submitted exactly like a non-streaming request (intake, safety, cache, budget,
single-flight, ledger); what is refused there is refused before the stream starts, with the usual
status and error envelope. The stream then follows the job's events: each new live preview in a
``progress`` event (a self-hosted server's denoising preview, the offline preview's simulated
partials, OpenAI's own partials) becomes a partial image, up to ``partial_images`` of them, in the
requested output format — and OpenAI's own partials, where the worker that runs the job is in this
process, come straight from it (:mod:`pixelpipe.events.partials`) at full size, as OpenAI sent
them, each once (:class:`_Partials`); the completed event carries the image the pipeline stored and
billed — where this process's worker runs the job, handed over as soon as it is billed (its bytes
durable with the bill; their put under way), before its thumbnail and last commit
(:mod:`pixelpipe.events.partials`). A cache hit streams its completed
event at once. A failure after the stream started is an ``error`` event (``{"type": "error",
"error": {message, type, param, code}}``): the SDK raises it as ``openai.APIError``. A reader
that goes away stops only its stream; the job runs on. While nothing happens (a queue, a slow
provider) a ``: keep-alive`` comment goes out every ``PIXELPIPE_STREAM_KEEPALIVE_S``
(:mod:`pixelpipe.api.openai_stream_keepalive`). Edits stream the same way, their events named
``image_edit.*``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from PIL import Image
from starlette.responses import StreamingResponse

from pixelpipe.api.openai_stream_keepalive import with_keepalive
from pixelpipe.api.problems import openai_shape
from pixelpipe.errors import PixelpipeError
from pixelpipe.events.partials import Final, Partial
from pixelpipe.fetch.datauri import decode_data_uri
from pixelpipe.jobs.model import Job, JobEvent, JobStatus
from pixelpipe.key import CONTENT_TYPES
from pixelpipe.providers.previews import PREVIEW_MAX_BYTES
from pixelpipe.services import Services
from pixelpipe.usecases.events import follow_job
from pixelpipe.usecases.images import image_bytes
from pixelpipe.usecases.jobs import get_job

MAX_PARTIAL_IMAGES = 3
OPENAI_QUALITIES = frozenset({"low", "medium", "high", "xhigh", "max", "auto"})
_PIL_FORMAT = {"webp": "WEBP", "png": "PNG", "jpeg": "JPEG"}
# a partial is re-encoded for each reader: zlib level 1 makes a 256 px PNG in ~2 ms instead of
# ~7 (the same pixels, ~30 % more bytes); JPEG and WebP encode a thumbnail in well under 1 ms
_FAST_ENCODE: dict[str, dict[str, Any]] = {"png": {"compress_level": 1}}
# a full-size partial in another format than the upstream's: the fastest settings (a preview)
_FULL_ENCODE: dict[str, dict[str, Any]] = {"png": {"compress_level": 1}, "webp": {"method": 0}}
Disconnected = Callable[[], Awaitable[bool]]
TokenUsage = Callable[[list[Job]], dict[str, Any] | None]
ZERO_USAGE: dict[str, Any] = {
    "input_tokens": 0,
    "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
    "output_tokens": 0,
    "total_tokens": 0,
}


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """One streamed request: how many partials, the event names' prefix, how long to wait."""

    partial_images: int
    timeout_s: float
    quality: str | None = None  # what the client asked for (echoed when the job has no tier)
    prefix: str = "image_generation"  # image_edit for edits
    keepalive_s: float = 0.0  # an SSE comment after this many quiet seconds (0: never)


def stream_response(
    svc: Services,
    job: Job,
    plan: StreamPlan,
    disconnected: Disconnected,
    usage: TokenUsage,
) -> StreamingResponse:
    """The ``text/event-stream`` answer for ``job`` (already submitted)."""
    headers = {
        "cache-control": "no-cache",
        "x-accel-buffering": "no",  # proxies: pass each event on at once
        "x-pixelpipe-generation-ids": job.id,
        "x-pixelpipe-cached": "true" if job.cached else "false",
    }
    return StreamingResponse(
        with_keepalive(_events(svc, job, plan, disconnected, usage), plan.keepalive_s),
        media_type="text/event-stream",
        headers=headers,
    )


async def _events(
    svc: Services, job: Job, plan: StreamPlan, disconnected: Disconnected, usage: TokenUsage
) -> AsyncGenerator[bytes, None]:
    """Partials while the job runs, then its completed (or error) event."""
    try:
        if not job.status.terminal:
            async for event in _partial_events(svc, job, plan, disconnected):
                if isinstance(event, Final):  # billed (and kept): the job finishes behind it
                    billed = dataclasses.replace(job, provider_state=event.provider_state)
                    yield completed_event(billed, event.data, plan, usage)
                    return
                yield event
            job = _announced(svc, job.id) or await get_job(svc, job.id)
            if not job.status.terminal:
                if await disconnected():
                    return  # the reader left; the job runs on and is billed once, as always
                yield _error_event(
                    "timed_out",
                    f"the image was not ready within {plan.timeout_s:g} s; it keeps running — "
                    f"follow GET /v1/generations/{job.id}",
                )
                return
        yield await _final_event(svc, job, plan, usage)
    except PixelpipeError as exc:  # e.g. the stored image could not be read: say so, in the stream
        yield _error_event(exc.code, f"{exc.detail} (generation {job.id})")


def _announced(svc: Services, job_id: str) -> Job | None:
    """The job as this process's worker announced its end (no read), if it did."""
    hooks = svc.completion_hooks
    return None if hooks is None else hooks.finished(job_id)


async def _partial_events(
    svc: Services, job: Job, plan: StreamPlan, disconnected: Disconnected
) -> AsyncIterator[bytes | Final]:
    """Follow the job until it ends, the reader leaves or the wait is over; with the raw partials
    the worker of this process relays (:mod:`pixelpipe.events.partials`) as they come, and the
    final image it hands over (last)."""
    deadline = time.monotonic() + plan.timeout_s

    async def gone() -> bool:
        return time.monotonic() > deadline or await disconnected()

    partials = _Partials(job, plan)
    async with svc.partials.subscribe(job.id) as hub:  # before the events: none falls between
        async for item in _merged(hub, follow_job(svc, job.id, 0, gone)):
            if isinstance(item, Final):
                yield item
                return
            event = await partials.take(item)
            if event is not None:
                yield event


async def _merged(
    hub: AsyncIterator[Partial | Final], events: AsyncIterator[tuple[JobEvent, Job | None]]
) -> AsyncIterator[Partial | Final | JobEvent]:
    """The job's events until they end, and the hub's partials as they come (a partial first
    when both are there: it left the provider before its stored event was written)."""
    next_partial = asyncio.ensure_future(anext(hub))
    next_event = asyncio.ensure_future(anext(events))
    try:
        while True:
            await asyncio.wait({next_partial, next_event}, return_when=asyncio.FIRST_COMPLETED)
            if next_partial.done():
                partial = next_partial.result()
                next_partial = asyncio.ensure_future(anext(hub))
                yield partial
                continue
            try:
                ev, _ = next_event.result()
            except StopAsyncIteration:
                return
            next_event = asyncio.ensure_future(anext(events))
            yield ev
    finally:
        await _cancel(next_partial, next_event)
        if isinstance(events, AsyncGenerator):
            with contextlib.suppress(RuntimeError):  # still running: the cancelled read closes it
                await events.aclose()


async def _cancel(*reads: asyncio.Future[Any]) -> None:
    """Cancel the reads under way; one that failed as it was cancelled is dropped."""
    for read in reads:
        read.cancel()
    await asyncio.wait(reads)
    for read in reads:
        if not read.cancelled():
            read.exception()


class _Partials:
    """Turns a job's partials into partial-image events, up to the number asked: the raw ones the
    hub relays (full size), and each new preview of its stored ``progress`` events (thumbnails:
    another provider's, or an OpenAI partial this reader did not get from the hub). A partial is
    known on both paths by its ``percent``: the stored event of a partial sent from the hub is
    not sent again, nor a hub partial whose stored event was sent first. One the hub dropped (a
    reader behind by more than the hub keeps) comes as its thumbnail when its stored event does —
    after the newer one the hub kept: nothing is lost or sent twice, and ``partial_image_index``
    counts on."""

    def __init__(self, job: Job, plan: StreamPlan) -> None:
        self.job, self.plan = job, plan
        self.sent = 0
        self.last: str | None = None
        self.from_hub: list[float] = []  # percents sent from the hub, their stored events to come
        self.from_store: list[float] = []  # percents sent from stored events

    async def take(self, item: Partial | JobEvent) -> bytes | None:
        if self.sent >= self.plan.partial_images:
            return None
        if isinstance(item, Partial):
            return await self._relayed(item)
        return await self._stored(item)

    async def _relayed(self, partial: Partial) -> bytes | None:
        if partial.percent in self.from_store:
            self.from_store.remove(partial.percent)
            return None
        b64 = await relayed_b64(partial, self.job.request.format)
        if b64 is None:
            return None
        self.from_hub.append(partial.percent)
        return self._event(b64)

    async def _stored(self, ev: JobEvent) -> bytes | None:
        if ev.type != "progress":
            return None
        preview = ev.data.get("preview")
        if not isinstance(preview, str) or preview == self.last:
            return None
        self.last = preview
        percent = ev.data.get("percent")
        if percent in self.from_hub:
            self.from_hub.remove(percent)
            return None
        data = await partial_bytes_async(preview, self.job.request.format)
        if data is None:
            return None
        if isinstance(percent, int | float):
            self.from_store.append(percent)
        return self._event(base64.b64encode(data).decode())

    def _event(self, b64: str) -> bytes:
        fields = {
            "b64_json": b64,
            "partial_image_index": self.sent,
            **echo_fields(self.job, self.plan),
        }
        self.sent += 1
        return sse(f"{self.plan.prefix}.partial_image", fields)


async def relayed_b64(partial: Partial, fmt: str) -> str | None:
    """A relayed partial's base64 in the requested format ``fmt``: as received when it is in
    that format, else re-encoded (full size) in a worker thread; None if unreadable."""
    if partial.output_format == fmt:
        return partial.b64_json
    return await asyncio.to_thread(reencoded_b64, partial.b64_json, fmt)


def reencoded_b64(b64: str, fmt: str) -> str | None:
    """A base64 picture, re-encoded as ``fmt`` (base64); None if unreadable."""
    try:
        with Image.open(io.BytesIO(base64.b64decode(b64, validate=True))) as im:
            picture = im.convert("RGBA" if fmt != "jpeg" and "A" in im.getbands() else "RGB")
        buf = io.BytesIO()
        picture.save(buf, _PIL_FORMAT[fmt], **_FULL_ENCODE.get(fmt, {}))
        return base64.b64encode(buf.getvalue()).decode()
    except Exception:  # a partial is a courtesy: one that cannot be read is skipped
        return None


async def partial_bytes_async(preview: str, fmt: str) -> bytes | None:
    """:func:`partial_bytes`, in a worker thread when it must re-encode (Pillow work, ~2-3 ms
    for a 256 px PNG, must not stall the event loop that serves every other stream)."""
    if preview.startswith(f"data:{CONTENT_TYPES[fmt]};"):
        return partial_bytes(preview, fmt)  # already in that format: only base64
    return await asyncio.to_thread(partial_bytes, preview, fmt)


def partial_bytes(preview: str, fmt: str) -> bytes | None:
    """A preview ``data:`` URL's image, in the requested format ``fmt``; None if unreadable."""
    try:
        data, media_type = decode_data_uri(preview, max_bytes=4 * PREVIEW_MAX_BYTES)
        if media_type == CONTENT_TYPES[fmt]:
            return data
        with Image.open(io.BytesIO(data)) as im:
            picture = im.convert("RGBA" if fmt != "jpeg" and "A" in im.getbands() else "RGB")
        buf = io.BytesIO()
        picture.save(buf, _PIL_FORMAT[fmt], **_FAST_ENCODE.get(fmt, {}))
        return buf.getvalue()
    except Exception:  # a preview is a courtesy: one that cannot be read is skipped
        return None


async def _final_event(svc: Services, job: Job, plan: StreamPlan, usage: TokenUsage) -> bytes:
    if job.status is not JobStatus.SUCCEEDED:
        code = job.error_code or (
            "canceled" if job.status is JobStatus.CANCELED else "provider_failed"
        )
        detail = job.error_detail or f"generation {job.id} {job.status}"
        return _error_event(code, f"{detail} (generation {job.id})")
    return completed_event(job, await image_bytes(svc, job), plan, usage)


def completed_event(job: Job, image: bytes, plan: StreamPlan, usage: TokenUsage) -> bytes:
    """The completed event of ``job``'s stored ``image``."""
    fields = {
        "b64_json": base64.b64encode(image).decode(),
        **echo_fields(job, plan),
        "usage": usage([job]) or ZERO_USAGE,
    }
    return sse(f"{plan.prefix}.completed", fields)


def echo_fields(job: Job, plan: StreamPlan) -> dict[str, Any]:
    """``size``, ``quality``, ``background``, ``output_format`` and ``created_at``, as OpenAI
    echoes them (``background`` is not forwarded: the model chooses, ``auto``)."""
    quality = job.request.quality
    if quality not in OPENAI_QUALITIES:
        quality = plan.quality if plan.quality in OPENAI_QUALITIES else "auto"
    return {
        "size": job.request.size,
        "quality": quality,
        "background": "auto",
        "output_format": job.request.format,
        "created_at": int(time.time()),
    }


def _error_event(code: str, message: str) -> bytes:
    _, type_, oa_code = openai_shape(code, {})
    error = {
        "message": message,
        "type": type_,
        "param": None,
        "code": oa_code,
        "pixelpipe_code": code,
    }
    return sse("error", {"error": error}, type_="error")


def sse(event: str, fields: dict[str, Any], *, type_: str | None = None) -> bytes:
    """One server-sent event whose data is ``{"type": event, **fields}``."""
    data = orjson.dumps({"type": type_ or event, **fields})
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
