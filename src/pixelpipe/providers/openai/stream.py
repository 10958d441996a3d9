"""OpenAI's streamed image generation, relayed as the job's live previews.

With ``PIXELPIPE_OPENAI_PARTIAL_IMAGES`` = N (1–3; default 0: runs are not streamed), a GPT image
generation is asked with ``stream=true, partial_images=N``: each
``image_generation.partial_image`` event is handed to the worker as it came — its base64, its
``output_format`` and ``partial_image_index`` under the progress's ``partial_image``, with the
``percent`` it stands for, undecoded (:func:`partial_progress`): the worker relays it to the
stream readers of its process and makes the job's live preview (a thumbnail) from it
(:mod:`pixelpipe.worker.progress`). The ``image_generation.completed`` event is the run's
answer, and an ``error`` event its failure.
OpenAI charges each partial image as extra output tokens: that is why it is off by default; the
``usage`` the completed event reports is what the image is priced from, as without streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from pixelpipe.entropy import random_bytes
from pixelpipe.errors import ProviderContentRejected, ProviderError, ProviderUnavailable
from pixelpipe.providers.base import ProviderRequest, ProviderUpdate
from pixelpipe.providers.http import body_codes, body_message, is_content_policy
from pixelpipe.providers.openai.client import (
    OpenAIProvider,
    images_update,
    is_dalle,
    openai_body,
)

MAX_PARTIAL_IMAGES = 3
# the most a run's answer waits for the worker to take the partials relayed just before it
DRAIN_S = 1.0


class StreamingOpenAIProvider(OpenAIProvider):
    """OpenAI Images with GPT image generations streamed: their partial images are handed to the
    worker as they came (it reads :meth:`watch_progress` beside the submit)."""

    def __init__(self, api_key: str, *, partial_images: int, **kw: Any) -> None:
        super().__init__(api_key, **kw)
        self.partial_images = partial_images
        self._watchers: dict[str, asyncio.Queue[dict[str, Any]]] = {}

    def watch_progress(self, job_id: str) -> AsyncGenerator[dict[str, Any], None]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_PARTIAL_IMAGES + 1)
        self._watchers[job_id] = queue  # now: the submit may relay before this is iterated
        return self._previews(job_id, queue)

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        if req.images or is_dalle(req.model_id):
            return await super().submit(req)  # edits and DALL-E are not streamed
        body = openai_body(req.request, req.model_id)
        body |= {"stream": True, "partial_images": self.partial_images}
        url = f"{self._base}/images/generations"
        async with self._http.stream("POST", url, json=body, allow=range(400, 600)) as resp:
            if resp.status_code >= 400:
                raise self._error(resp)
            run_id = resp.headers.get("x-request-id") or f"oai_{random_bytes(16).hex()}"
            async for kind, data in sse_events(resp.aiter_lines()):
                if kind.endswith(".partial_image"):
                    self._relay(req.job_id, data)
                elif kind.endswith(".completed"):
                    await self._taken(req.job_id)
                    return images_update(run_id, completed_answer(data), req.model_id)
                elif kind == "error":
                    raise stream_error(data)
        raise stream_error({})

    def _relay(self, job_id: str, data: dict[str, Any]) -> None:
        queue = self._watchers.get(job_id)
        if queue is None:
            return
        progress = partial_progress(data, self.partial_images)  # no decoding: the worker's work
        if progress is not None:
            with contextlib.suppress(asyncio.QueueFull):  # a preview is a courtesy
                queue.put_nowait(progress)

    async def _taken(self, job_id: str) -> None:
        """Wait (at most :data:`DRAIN_S`) until the worker has taken every partial relayed so
        far: a fast run's events come in one read, its partials and its answer together, and
        the worker stops watching once the answer is returned."""
        queue = self._watchers.get(job_id)
        if queue is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_S):
                    await queue.join()

    async def _previews(
        self, job_id: str, queue: asyncio.Queue[dict[str, Any]]
    ) -> AsyncGenerator[dict[str, Any], None]:
        try:
            while True:
                progress = await queue.get()
                try:
                    yield progress
                finally:
                    queue.task_done()  # the worker asks for the next one, or stopped watching
        finally:
            if self._watchers.get(job_id) is queue:
                del self._watchers[job_id]
            while not queue.empty():  # nobody takes these now: the answer need not wait
                queue.get_nowait()
                queue.task_done()


@dataclass
class SSEEvent:
    event: str = ""
    data: list[str] = field(default_factory=list)

    def json(self) -> Any:
        try:
            return orjson.loads("\n".join(self.data))
        except orjson.JSONDecodeError:
            return None


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(type, data) of each server-sent event whose data is a JSON object; the type is the
    data's ``type`` (else the ``event:`` name)."""
    current = SSEEvent()
    async for line in lines:
        if line == "":
            data = current.json() if current.data else None
            if isinstance(data, dict):
                yield str(data.get("type") or current.event), data
            current = SSEEvent()
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                current.event = value
            elif name == "data":
                current.data.append(value)
    data = current.json() if current.data else None
    if isinstance(data, dict):
        yield str(data.get("type") or current.event), data


def partial_progress(data: dict[str, Any], partials: int) -> dict[str, Any] | None:
    """A partial-image event as the job's progress: ``percent`` and ``partial_image`` (its
    ``b64_json`` as received, ``output_format`` (png when not said) and ``partial_image_index``);
    None when it carries no image. Nothing is decoded here."""
    b64 = data.get("b64_json")
    if not isinstance(b64, str) or not b64:
        return None
    index = data.get("partial_image_index")
    index = index if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else 0
    fmt = data.get("output_format")
    raw = {
        "b64_json": b64,
        "output_format": fmt if fmt in ("png", "jpeg", "webp") else "png",
        "partial_image_index": index,
    }
    return {"percent": round(100 * (index + 1) / (partials + 1), 1), "partial_image": raw}


def completed_answer(data: dict[str, Any]) -> dict[str, Any]:
    """A completed event as the non-streamed answer's shape (``data``, ``usage``, echoes)."""
    echoed = ("output_format", "size", "quality", "background")
    answer: dict[str, Any] = {k: data[k] for k in echoed if k in data}
    answer["data"] = [{"b64_json": data.get("b64_json")}] if data.get("b64_json") else []
    if isinstance(data.get("usage"), dict):
        answer["usage"] = data["usage"]
    return answer


def stream_error(data: dict[str, Any]) -> ProviderError:
    """An ``error`` event (or a stream that ended without an image) in the error tree."""
    body = {"error": data.get("error")} if isinstance(data.get("error"), dict) else data
    message = body_message(body) or "the stream ended without an image"
    detail = f"openai stream: {message}"
    if is_content_policy(message, *body_codes(body)):
        return ProviderContentRejected(detail, provider="openai")
    return ProviderUnavailable(detail, provider="openai", billable=False)
