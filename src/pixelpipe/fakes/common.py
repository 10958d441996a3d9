"""What the three fake providers share: switchable behaviours, counters, expiring files, webhooks.

Behaviours are switched per fake with ``POST /_control`` (JSON, any subset of :class:`Behaviour`'s
fields, plus the actions ``{"reset": true}`` and ``{"expire_outputs": true}``) or with constructor
arguments. Counters are read with ``GET /_stats``. Counted "next N calls" behaviours apply to the
provider's API calls (create, status, result, cancel), not to ``/files``, secrets or JWKS.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CONTENT_TYPES = {
    "webp": "image/webp",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
}
# Prompt markers that force an outcome without touching /_control (handy from the web UI).
NSFW_MARKER = "[nsfw]"
POLICY_MARKER = "[blocked]"


@dataclass
class Behaviour:
    """Switchable behaviours of one fake. Counters (``*_next``) apply to the next N calls."""

    latency_s: float = 0.5  # time from create to a terminal state
    rate_limit_next: int = 0  # answer 429 to the next N API calls
    retry_after: str = "1"  # Retry-After header value on 429 ("" = no header; HTTP-date ok)
    error_next: int = 0  # answer error_status to the next N API calls
    error_status: int = 503
    hang_next: int = 0  # hold the next N API calls for hang_s (client timeouts)
    hang_s: float = 30.0
    # the answer to a create reaches the caller this long after the run was made (network
    # latency): a caller that dies meanwhile never learns the id of a run that goes on and bills
    create_answer_delay_s: float = 0.0
    content_policy_next: int = 0  # next N runs are refused by the content policy
    nsfw_next: int = 0  # next N runs produce only NSFW-filtered images
    lose_webhook_next: int = 0  # next N runs never send their terminal webhook
    duplicate_webhooks: bool = False  # send every terminal webhook twice
    out_of_order_webhooks: bool = False  # send a stale "running" webhook after the terminal one
    webhook_timestamp_skew_s: float = 0.0  # added to signed timestamps (negative = replay)
    webhook_retry_delays_s: list[float] = field(default_factory=lambda: [0.2, 0.5, 1.0, 2.0])
    output_ttl_s: float = 3600.0  # output URLs expire this long after they were produced
    expired_status: int = 410  # 404 or 410 for an expired output
    # hostile providers (security tests): garbage answers, outputs pointing anywhere, bad images
    garbage_next: int = 0  # answer the next N API calls 200 with a body that is not the API's JSON
    output_url: str = ""  # outputs point here instead of /files/… ("{base}" = this fake's URL)
    output_kind: str = "image"  # image | bomb | truncated | not_image: what output files hold

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (unknown names or wrong types raise ValueError)."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in types:
                raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(types)}")
            setattr(self, name, _coerce(getattr(self, name), value, name))

    def take(self, name: str) -> bool:
        """Consume one unit of the counter ``name``; True when it was set."""
        left = int(getattr(self, name))
        if left > 0:
            setattr(self, name, left - 1)
        return left > 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(current: Any, value: Any, name: str) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if isinstance(current, list):
        return [float(v) for v in value]
    try:
        return type(current)(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a {type(current).__name__}") from None


@dataclass
class Stats:
    creates: Counter[str] = field(default_factory=Counter)  # per model
    calls: Counter[str] = field(default_factory=Counter)  # per operation
    webhooks: Counter[str] = field(default_factory=Counter)  # attempts, delivered, failed, lost…

    def as_dict(self) -> dict[str, Any]:
        return {
            "creates": dict(self.creates),
            "creates_total": sum(self.creates.values()),
            "calls": dict(self.calls),
            "webhooks": dict(self.webhooks),
        }


@dataclass
class StoredFile:
    data: bytes
    content_type: str
    created: float
    expired: bool = False


class FileStore:
    """Output files served at ``/files/<name>``; they expire like real provider URLs do."""

    def __init__(self, behaviour: Behaviour) -> None:
        self._behaviour = behaviour
        self._files: dict[str, StoredFile] = {}

    def put(self, name: str, data: bytes, content_type: str) -> None:
        data = hostile_bytes(self._behaviour.output_kind, data)
        self._files[name] = StoredFile(data, content_type, time.monotonic())

    def expire_all(self) -> None:
        for f in self._files.values():
            f.expired = True

    def clear(self) -> None:
        self._files.clear()

    async def serve(self, request: Request) -> Response:
        stored = self._files.get(request.path_params["name"])
        if stored is None:
            return Response("not found", status_code=404)
        age = time.monotonic() - stored.created
        if stored.expired or age > self._behaviour.output_ttl_s:
            return Response("expired", status_code=self._behaviour.expired_status)
        return Response(stored.data, media_type=stored.content_type)


def hostile_bytes(kind: str, data: bytes) -> bytes:
    """What a hostile or broken provider serves instead of ``data`` (content type unchanged)."""
    if kind == "bomb":
        return decompression_bomb()
    if kind == "truncated":
        return data[: len(data) // 2]
    if kind == "not_image":
        return b"<!doctype html><html><body><script>alert(1)</script>not an image</body></html>"
    return data


def decompression_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A ~100-byte PNG that declares ``width`` x ``height`` pixels (10 gigapixels by default)."""
    import struct
    import zlib

    from pixelpipe.fetch.png_check import IEND_CHUNK, PNG_SIGNATURE, png_chunk

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 64)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + IEND_CHUNK


class Background:
    """Tasks a fake runs after answering (webhooks); closed with the fake."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = asyncio.Event()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sleep(self, seconds: float) -> bool:
        """Sleep; False when the fake is closing meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), timeout=max(0.0, seconds))
        return not self.closing.is_set()

    async def aclose(self) -> None:
        self.closing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


Signer = Callable[[bytes], dict[str, str]]


class WebhookSender:
    """POSTs signed webhooks; the terminal one is retried on errors, 4xx and 5xx."""

    def __init__(self, behaviour: Behaviour, stats: Stats, background: Background) -> None:
        self._behaviour = behaviour
        self._stats = stats
        self._bg = background
        self._client: httpx.AsyncClient | None = None

    async def send(self, url: str, body: bytes, sign: Signer, *, retry: bool) -> bool:
        delays = [*self._behaviour.webhook_retry_delays_s] if retry else []
        while True:
            if await self._attempt(url, body, sign):
                return True
            if not delays or not await self._bg.sleep(delays.pop(0)):
                self._stats.webhooks["failed"] += 1
                return False

    async def _attempt(self, url: str, body: bytes, sign: Signer) -> bool:
        self._stats.webhooks["attempts"] += 1
        headers = {"content-type": "application/json", **sign(body)}
        try:
            resp = await self._http().post(url, content=body, headers=headers)
        except httpx.HTTPError:
            return False
        ok = 200 <= resp.status_code < 300
        self._stats.webhooks["delivered" if ok else "refused"] += 1
        return ok

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def base_url(request: Request, public_url: str | None) -> str:
    """This fake's own base URL as the client sees it (mount prefix included)."""
    if public_url:
        return public_url.rstrip("/")
    root = str(request.scope.get("root_path", ""))
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def outcome_for(prompt: str, behaviour: Behaviour) -> str:
    """``ok``, ``nsfw`` or ``policy`` for a new run (markers in the prompt or counters)."""
    if POLICY_MARKER in prompt or behaviour.take("content_policy_next"):
        return "policy"
    if NSFW_MARKER in prompt or behaviour.take("nsfw_next"):
        return "nsfw"
    return "ok"


class FakeCore:
    """Behaviour, counters, files, background tasks and webhooks of one fake."""

    def __init__(self, behaviour: Behaviour | None, public_url: str | None) -> None:
        self.behaviour = behaviour or Behaviour()
        self._initial = dataclasses.replace(self.behaviour)
        self.stats = Stats()
        self.files = FileStore(self.behaviour)
        self.background = Background()
        self.webhooks = WebhookSender(self.behaviour, self.stats, self.background)
        self.public_url = public_url

    async def fault(self, operation: str) -> str | None:
        """Count the call; ``"rate_limit"``, ``"error"`` or ``"garbage"`` when one is injected."""
        self.stats.calls[operation] += 1
        if self.behaviour.take("hang_next"):
            await self.background.sleep(self.behaviour.hang_s)
        if self.behaviour.take("rate_limit_next"):
            return "rate_limit"
        if self.behaviour.take("error_next"):
            return "error"
        if self.behaviour.take("garbage_next"):
            self.stats.calls["garbage"] += 1
            return "garbage"
        return None

    @staticmethod
    def garbage_response() -> Response:
        """200 with a body no client can parse as the provider's answer (a broken proxy, say)."""
        return Response(b"<html>502 Bad Gateway</html>\x00\xff", media_type="application/json")

    def output_url(self, base: str, default: str) -> str:
        """Where an output is said to be: the file URL, unless ``output_url`` redirects it."""
        override = self.behaviour.output_url
        return override.replace("{base}", base) if override else default

    def rate_limit_headers(self) -> dict[str, str]:
        value = self.behaviour.retry_after
        return {"retry-after": value} if value else {}

    def reset(self) -> None:
        self.behaviour.update(dataclasses.asdict(self._initial))
        self.stats.creates.clear()
        self.stats.calls.clear()
        self.stats.webhooks.clear()

    def control_routes(self, extra: Callable[[dict[str, Any]], None] | None = None) -> list[Route]:
        async def control(request: Request) -> Response:
            if request.method == "GET":
                return JSONResponse(self.behaviour.as_dict())
            return await self._control(request, extra)

        async def stats(request: Request) -> Response:
            return JSONResponse(self.stats.as_dict())

        async def redirect(request: Request) -> Response:
            # an open redirect, as a hostile output host would run (SSRF tests)
            self.stats.calls["redirect"] += 1
            target = request.query_params.get("to", "/")
            return Response(status_code=302, headers={"location": target})

        return [
            Route("/_control", control, methods=["GET", "POST"]),
            Route("/_stats", stats, methods=["GET"]),
            Route("/files/{name:path}", self.files.serve, methods=["GET"]),
            Route("/redirect", redirect, methods=["GET"]),
        ]

    async def _control(
        self, request: Request, extra: Callable[[dict[str, Any]], None] | None
    ) -> Response:
        try:
            changes = dict(await request.json())
            if changes.pop("reset", False):
                self.reset()
            if changes.pop("expire_outputs", False):
                self.files.expire_all()
            if extra is not None:
                extra(changes)
            self.behaviour.update(changes)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse(self.behaviour.as_dict())

    async def aclose(self) -> None:
        await self.background.aclose()
        await self.webhooks.aclose()


class FakeServer:
    """What every fake exposes around its :class:`FakeCore`: the switchable behaviours, closing,
    and the ASGI lifespan that closes it when its server stops."""

    def __init__(self, behaviour: Behaviour | None, public_url: str | None) -> None:
        self.core = FakeCore(behaviour, public_url)

    @property
    def behaviour(self) -> Behaviour:
        return self.core.behaviour

    async def aclose(self) -> None:
        await self.core.aclose()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()
