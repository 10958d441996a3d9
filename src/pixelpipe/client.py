"""Typed async client for a running pixelpipe server (``pixelpipe serve``).

>>> import asyncio
>>> from pixelpipe import Client
>>> async def main() -> None:
...     async with Client("http://127.0.0.1:8000") as client:
...         gen = await client.generate("a red fox in the snow", model="preview", seed=7)
...         print(gen.status, gen.image.url if gen.image else None, gen.cost.usd)
...         png = await client.download(gen)  # the stored bytes

Every method returns the same pydantic models the HTTP API documents (``GenerationPublic``,
``GenerationList``, ``EstimatePublic``, ``UsagePublic``, ``ModelPublic``), and every error answer
(``application/problem+json``) is raised as the matching :class:`~pixelpipe.errors.PixelpipeError`
subclass — the same tree the in-process :class:`~pixelpipe.pipeline.Pipeline` raises — with the
server's ``detail`` and extra fields.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Literal

import httpx
import orjson

from pixelpipe.api.routes_boards import BoardList, BoardPublic
from pixelpipe.api.routes_gallery import BulkDeletionPublic, Changed, FavouriteList, GalleryList
from pixelpipe.api.routes_meta import EstimatePublic, ModelList, ModelPublic
from pixelpipe.api.routes_uploads import UploadPublic
from pixelpipe.api.routes_usage import UsagePublic
from pixelpipe.api.schemas import GenerationList, GenerationPublic
from pixelpipe.errors import ERROR_CODES, PixelpipeError

__all__ = [
    "BoardPublic",
    "BulkDeletionPublic",
    "Client",
    "EstimatePublic",
    "GalleryList",
    "GenerationEvent",
    "GenerationList",
    "GenerationPublic",
    "ModelPublic",
    "UsagePublic",
]

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
_PROBLEM_KEYS = frozenset({"type", "title", "status", "detail", "code"})


class Client:
    """Async client for the pixelpipe HTTP API.

    ``base_url``: the server (``http://127.0.0.1:8000``); ``api_key``: sent as a Bearer token
    (only needed when the server requires keys); ``timeout``: per HTTP request, in seconds.
    Use it as an async context manager, or call :meth:`aclose` when done.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # ---- generations ---------------------------------------------------------------------------
    async def submit(
        self, prompt: str, *, idempotency_key: str | None = None, **params: Any
    ) -> GenerationPublic:
        """Start a generation; returns at once (``status`` queued, or succeeded for a cache hit).

        ``params``: any field of ``POST /v1/generations`` — ``model``, ``seed``, ``size``,
        ``aspect_ratio``, ``format``, ``quality``, ``steps``, ``guidance``, ``negative_prompt``,
        ``provider``, ``group``, ``webhook``; for an edit ``images``, ``mask``, ``strength``,
        ``input_fidelity`` (upload ids from :meth:`upload`, generation ids or URLs).

        Example::

            gen = await client.submit("a lighthouse", model="flux-schnell", seed=1)
        """
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        body = {"prompt": prompt, **{k: v for k, v in params.items() if v is not None}}
        resp = await self._request("POST", "/v1/generations", json=body, headers=headers)
        return GenerationPublic.model_validate_json(resp.content)

    async def get(self, generation_id: str) -> GenerationPublic:
        """The generation as it is now."""
        resp = await self._request("GET", f"/v1/generations/{generation_id}")
        return GenerationPublic.model_validate_json(resp.content)

    async def wait(
        self, generation_id: str, *, timeout_s: float | None = 600.0
    ) -> GenerationPublic:
        """Follow the generation's server-sent events until it is terminal; return it.

        Reconnects with ``Last-Event-ID`` if the stream drops. ``TimeoutError`` after
        ``timeout_s`` (the generation keeps running on the server).
        """
        async with asyncio.timeout(timeout_s):
            last: str | None = None
            while True:
                gen = await self.get(generation_id)
                if gen.status in TERMINAL:
                    return gen
                done, last = await self._follow(generation_id, last)
                if done is not None:
                    return done
                await asyncio.sleep(0.2)  # the stream ended early: look again, then resume

    async def generate(
        self,
        prompt: str,
        *,
        timeout_s: float | None = 600.0,
        raise_on_failure: bool = True,
        **params: Any,
    ) -> GenerationPublic:
        """Submit and wait: the finished generation (``image.url`` to fetch it).

        Raises the generation's error (e.g. ``ProviderContentRejected``) when it failed, unless
        ``raise_on_failure=False``.

        Example::

            gen = await client.generate("a red fox", model="preview", seed=7)
            print(gen.image.url, gen.cached, gen.cost.usd)
        """
        gen = await self.submit(prompt, **params)
        if gen.status not in TERMINAL:
            gen = await self.wait(gen.id, timeout_s=timeout_s)
        if raise_on_failure and gen.status != "succeeded":
            code = gen.error.code if gen.error else "provider_failed"
            detail = gen.error.detail if gen.error and gen.error.detail else gen.status
            raise _error(code, f"{detail} (generation {gen.id})", {})
        return gen

    async def list(
        self,
        *,
        limit: int = 30,
        cursor: str | None = None,
        model: str | None = None,
        q: str | None = None,
        group: str | None = None,
        status: str | None = None,
    ) -> GenerationList:
        """One page, newest first; pass ``page.next_cursor`` as ``cursor`` for the next one."""
        params = {
            k: v
            for k, v in {
                "limit": limit,
                "cursor": cursor,
                "model": model,
                "q": q,
                "group": group,
                "status": status,
            }.items()
            if v is not None
        }
        resp = await self._request("GET", "/v1/generations", params=params)
        return GenerationList.model_validate_json(resp.content)

    async def iterate(self, **filters: Any) -> AsyncIterator[GenerationPublic]:
        """Every generation matching ``filters`` (as for :meth:`list`), page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(cursor=cursor, **filters)
            for gen in page.data:
                yield gen
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def cancel(self, generation_id: str) -> GenerationPublic:
        """Cancel a running generation (``Conflict`` when it already finished)."""
        resp = await self._request("POST", f"/v1/generations/{generation_id}/cancel")
        return GenerationPublic.model_validate_json(resp.content)

    async def retry(self, generation_id: str) -> GenerationPublic:
        """Retry a failed or canceled generation: the new generation (``retry_of`` names the
        old one), queued, or succeeded at once from the cache. ``Conflict`` for one that
        succeeded or still runs."""
        resp = await self._request("POST", f"/v1/generations/{generation_id}/retry")
        return GenerationPublic.model_validate_json(resp.content)

    async def delete(self, generation_id: str) -> None:
        """Delete a finished generation; its image goes unless another generation shares it.
        Deleting again is fine; ``NotFound`` for an id that never existed, ``Conflict`` while
        it runs (cancel it first)."""
        await self._request("DELETE", f"/v1/generations/{generation_id}")

    async def download(self, generation: GenerationPublic | str) -> bytes:
        """The stored image bytes of a succeeded generation (or of an image URL)."""
        if isinstance(generation, str):
            url = generation
        elif generation.image is None:
            raise _error("not_found", f"generation {generation.id} has no image", {})
        else:
            url = generation.image.url
        resp = await self._request("GET", url)
        return resp.content

    async def upload(self, data: bytes, filename: str = "image.png") -> UploadPublic:
        """Store an input image (``POST /v1/uploads``): verified, metadata stripped,
        content-addressed. Pass its ``id`` in a generation's ``images`` or ``mask``.

        Example::

            up = await client.upload(open("photo.png", "rb").read(), "photo.png")
            gen = await client.generate("make it dusk", images=[up.id])
        """
        files = {"file": (filename, data, "application/octet-stream")}
        resp = await self._request("POST", "/v1/uploads", files=files)
        return UploadPublic.model_validate_json(resp.content)

    # ---- gallery: filters, favourites, boards, bulk download and delete (docs/gallery.md) ------
    async def gallery(self, **filters: Any) -> GalleryList:
        """One page of ``GET /v1/gallery``: filters ``model``, ``provider``, ``status``,
        ``since``, ``until``, ``board``, ``favourite``, ``cost_min``, ``cost_max``, ``q``,
        ``group``; ``sort`` (newest, oldest, cost_desc, cost_asc); ``cursor``, ``limit``."""
        params = {k: _param(v) for k, v in filters.items() if v is not None}
        resp = await self._request("GET", "/v1/gallery", params=params)
        return GalleryList.model_validate_json(resp.content)

    async def favourite(self, ids: builtins.list[str], on: bool = True) -> int:
        """Mark (``on``) or unmark your favourites; how many changed."""
        body = {"ids": ids, "favourite": on}
        resp = await self._request("POST", "/v1/favourites", json=body)
        return Changed.model_validate_json(resp.content).changed

    async def favourites(self) -> builtins.list[str]:
        """Your favourites' ids."""
        resp = await self._request("GET", "/v1/favourites")
        return FavouriteList.model_validate_json(resp.content).data

    async def boards(self) -> builtins.list[BoardPublic]:
        resp = await self._request("GET", "/v1/boards")
        return BoardList.model_validate_json(resp.content).data

    async def create_board(self, name: str) -> BoardPublic:
        """A new board, or yours of that name when you have one."""
        resp = await self._request("POST", "/v1/boards", json={"name": name})
        return BoardPublic.model_validate_json(resp.content)

    async def rename_board(self, board_id: str, name: str) -> BoardPublic:
        resp = await self._request("PATCH", f"/v1/boards/{board_id}", json={"name": name})
        return BoardPublic.model_validate_json(resp.content)

    async def delete_board(self, board_id: str) -> None:
        """Delete a board (its images stay)."""
        await self._request("DELETE", f"/v1/boards/{board_id}")

    async def add_to_board(self, board_id: str, ids: builtins.list[str]) -> int:
        resp = await self._request("POST", f"/v1/boards/{board_id}/images", json={"ids": ids})
        return Changed.model_validate_json(resp.content).changed

    async def remove_from_board(self, board_id: str, ids: builtins.list[str]) -> int:
        url = f"/v1/boards/{board_id}/images/remove"
        resp = await self._request("POST", url, json={"ids": ids})
        return Changed.model_validate_json(resp.content).changed

    async def archive(self, ids: builtins.list[str], into: BinaryIO) -> int:
        """Write the zip of these generations (images, ``metadata.json``, ``metadata.csv``)
        into the open binary file ``into`` as it streams; the number of bytes written."""
        written = 0
        async with self._http.stream("POST", "/v1/images/archive", json={"ids": ids}) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                raise _from_response(resp)
            async for piece in resp.aiter_bytes():
                into.write(piece)
                written += len(piece)
        return written

    async def delete_many(self, ids: builtins.list[str]) -> BulkDeletionPublic:
        """Delete these generations (shared images stay while another uses them)."""
        resp = await self._request("POST", "/v1/generations/delete", json={"ids": ids})
        return BulkDeletionPublic.model_validate_json(resp.content)

    # ---- catalog and costs -----------------------------------------------------------------------
    async def models(self) -> builtins.list[ModelPublic]:
        resp = await self._request("GET", "/v1/models")
        return ModelList.model_validate_json(resp.content).data

    async def estimate(self, prompt: str, **params: Any) -> EstimatePublic:
        """What the generation would cost (same fields as :meth:`submit`); nothing is spent."""
        body = {"prompt": prompt, **{k: v for k, v in params.items() if v is not None}}
        resp = await self._request("POST", "/v1/estimates", json=body)
        return EstimatePublic.model_validate_json(resp.content)

    async def usage(
        self,
        *,
        group_by: Literal["model", "provider", "key", "day"] = "model",
        since: str | None = None,
        until: str | None = None,
    ) -> UsagePublic:
        """Spend, savings and unpriced events (``GET /v1/usage``)."""
        params = {"group_by": group_by, "since": since, "until": until, "format": "json"}
        resp = await self._request(
            "GET", "/v1/usage", params={k: v for k, v in params.items() if v is not None}
        )
        return UsagePublic.model_validate_json(resp.content)

    async def call_json(self, method: str, path: str, body: Any = None) -> Any:
        """Any JSON endpoint (``method path``, ``body`` sent as JSON when given): its decoded
        answer; a problem answer raises its error class, as every method here does."""
        resp = await self._request(method, path, json=body)
        return resp.json()

    # ---- internals -------------------------------------------------------------------------------
    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        resp = await self._http.request(method, url, **kwargs)
        if resp.status_code >= 400:
            raise _from_response(resp)
        return resp

    async def stream(
        self, generation_id: str, *, timeout_s: float | None = 600.0
    ) -> AsyncIterator[GenerationEvent]:
        """Every event of the generation, replayed from its start then live, until its final
        status event (the last one yielded): ``status`` events (each with the generation as it
        was then, ``event.generation``) and ``progress`` events (``event.progress``: ``percent``,
        ``fraction``, ``step``/``steps``, ``queue_position``, ``eta_s`` where known; a live
        ``preview``). Reconnects with ``Last-Event-ID`` if the stream drops; ``TimeoutError``
        after ``timeout_s`` (the generation keeps running on the server).

        Example::

            async for event in client.stream(gen.id):
                print(event.type, event.progress.get("percent"), event.progress.get("eta_s"))
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last: str | None = None
        while True:
            async for event in self._read_events(generation_id, last, deadline):
                last = event.id or last
                yield event
                if event.final:
                    return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"generation {generation_id} still running after {timeout_s} s")
            await asyncio.sleep(0.2)  # the stream ended early: resume after the last event

    async def _follow(
        self, generation_id: str, last_id: str | None
    ) -> tuple[GenerationPublic | None, str | None]:
        """Read the event stream until a terminal status (or until it ends): (job, last id)."""
        async for event in self._read_events(generation_id, last_id, None):
            last_id = event.id or last_id
            if event.final:
                return event.generation or await self.get(generation_id), last_id
        return None, last_id

    async def _read_events(
        self, generation_id: str, last_id: str | None, deadline: float | None
    ) -> AsyncIterator[GenerationEvent]:
        """One connection's events (after ``last_id``), until it ends or drops."""
        headers = {"last-event-id": last_id} if last_id else {}
        read_s = 45.0  # the server pings every 15 s
        if deadline is not None:
            read_s = max(0.1, min(read_s, deadline - time.monotonic()))
        timeout = httpx.Timeout(10.0, read=read_s)
        url = f"/v1/generations/{generation_id}/events"
        try:
            async with self._http.stream("GET", url, headers=headers, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise _from_response(resp)
                async for event in _sse_events(resp.aiter_lines()):
                    yield event
        except httpx.TransportError:
            pass  # reconnect from last_id


@dataclass(frozen=True, slots=True)
class GenerationEvent:
    """One event of ``GET /v1/generations/{id}/events`` (:meth:`Client.stream`)."""

    type: str  # status, progress, …
    data: dict[str, Any]
    id: str | None = None

    @property
    def status(self) -> str | None:
        """A status event's new status (None for other events)."""
        status = self.data.get("status") if self.type == "status" else None
        return status if isinstance(status, str) else None

    @property
    def final(self) -> bool:
        """The generation's last event: it succeeded, failed or was canceled."""
        return self.status in TERMINAL

    @property
    def generation(self) -> GenerationPublic | None:
        """The generation as it was at a status event (None for other events)."""
        job = self.data.get("job") if self.type == "status" else None
        return GenerationPublic.model_validate(job) if isinstance(job, dict) else None

    @property
    def progress(self) -> dict[str, Any]:
        """How far the generation is: a progress event's data, or a status event's job's."""
        if self.type == "progress":
            return self.data
        job = self.data.get("job") if self.type == "status" else None
        progress = job.get("progress") if isinstance(job, dict) else None
        return progress if isinstance(progress, dict) else {}


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[GenerationEvent]:
    """Server-sent events from their lines (comments such as the server's pings skipped)."""
    event_id: str | None = None
    kind, data = "", ""
    async for line in lines:
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif not line and kind:
            event = _event(kind, data, event_id)
            kind, data = "", ""
            if event is not None:
                yield event


def _event(kind: str, data: str, event_id: str | None) -> GenerationEvent | None:
    try:
        parsed = orjson.loads(data or b"{}")
    except orjson.JSONDecodeError:
        return None
    return GenerationEvent(kind, parsed if isinstance(parsed, dict) else {}, event_id)


def _param(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _from_response(resp: httpx.Response) -> PixelpipeError:
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or "code" not in body:
        text = resp.text[:300] or resp.reason_phrase
        return _error(f"http_{resp.status_code}", f"HTTP {resp.status_code}: {text}", {})
    extra = {k: v for k, v in body.items() if k not in _PROBLEM_KEYS}
    retry_after = resp.headers.get("retry-after")
    if retry_after:
        with contextlib.suppress(ValueError):
            extra["retry_after"] = float(retry_after)
    return _error(str(body["code"]), str(body.get("detail") or body.get("title") or ""), extra)


def _error(code: str, detail: str, extra: dict[str, Any]) -> PixelpipeError:
    """An instance of the error class registered for ``code`` (PixelpipeError if unknown)."""
    cls = ERROR_CODES.get(code, PixelpipeError)
    try:
        exc = cls(detail, **extra)
    except TypeError:  # a required keyword (e.g. SafetyRejected's reason) is missing
        exc = PixelpipeError(detail, code=code, **extra)
    return exc
