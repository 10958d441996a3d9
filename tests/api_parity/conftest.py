"""Two copies of the real app side by side, one with the fast lane and one without, driven in step.

Each request goes to both; :meth:`Pair.send` asserts that the answers are the same — status,
headers (all but Content-Length) and body byte for byte — once what legitimately differs between
two servers is normalised: generation ids (numbered in order of first appearance, so a Location
header must still name the body's id), timestamps and image-URL signatures.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from pixelpipe.api import fast_lane
from pixelpipe.api.app import create_app
from pixelpipe.api.fast_lane import FastLane
from pixelpipe.api.lane_plan import LanePlan
from pixelpipe.security.keys import create_key
from pixelpipe.services import Services
from pixelpipe.settings import Settings

LOOPBACK = ("127.0.0.1", 50123)
Change = Callable[[FastAPI], None]
SECRET = "parity-secret-key-0123456789-abcdefghijklmnop"
_ID = re.compile(rb"gen_[0-9a-z]{26}")
_VOLATILE = (
    (re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"), b"<time>"),
    (re.compile(rb'"duration_s":[-0-9.e+]+'), b'"duration_s":-1'),
    (re.compile(rb'"created":\d+'), b'"created":0'),
    (re.compile(rb'"created_at":\d+'), b'"created_at":0'),  # streamed image events
    (re.compile(rb"exp=\d+&sig=[-A-Za-z0-9_=%.]+"), b"exp=<exp>&sig=<sig>"),
)
_UNCOMPARED = frozenset({"content-length", "date", "server"})


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, bytes], ...]
    body: bytes
    by_lane: bool

    def json(self) -> Any:
        return orjson.loads(self.body)

    def header(self, name: str) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


@dataclass
class Side:
    app: FastAPI
    client: httpx.AsyncClient
    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[bytes, bytes] = field(default_factory=dict)
    key_ids: dict[bytes, bytes] = field(default_factory=dict)  # API key id -> its label

    @property
    def svc(self) -> Services:
        svc: Services = self.app.state.services
        return svc

    def normalise(self, raw: bytes) -> bytes:
        raw = _ID.sub(lambda m: self.ids.setdefault(m.group(), b"gen_#%d" % len(self.ids)), raw)
        for pattern, replacement in _VOLATILE:
            raw = pattern.sub(replacement, raw)
        for key_id, label in self.key_ids.items():
            raw = raw.replace(key_id, b"<key " + label + b">")
        return raw

    def auth(self, key: str | None) -> list[tuple[str, str]]:
        return [] if key is None else [("authorization", f"Bearer {self.keys[key]}")]

    async def send(self, method: str, path: str, key: str | None, **kw: Any) -> Answer:
        given = kw.pop("headers", None) or {}
        headers = list(given.items()) if isinstance(given, dict) else list(given)
        headers += self.auth(key)
        before = len(LANE_ANSWERS)
        r = await self.client.request(method, path, headers=headers, **kw)
        return Answer(
            status=r.status_code,
            headers=tuple(
                (n.decode().lower(), self.normalise(v))
                for n, v in r.headers.raw
                if n.decode().lower() not in _UNCOMPARED
            ),
            body=self.normalise(r.content),
            by_lane=len(LANE_ANSWERS) > before,
        )


LANE_ANSWERS: list[str] = []  # paths the lane answered itself (filled by the patched answer())


@dataclass
class Pair:
    lane: Side
    route: Side

    async def send(self, method: str, path: str, *, key: str | None = None, **kw: Any) -> Answer:
        """Send to both; assert the answers are the same; return the lane side's."""
        with_lane = await self.lane.send(method, path, key, **kw)
        without = await self.route.send(method, path, key, **kw)
        assert not without.by_lane
        what = f"{method} {path} {kw}"
        assert with_lane.status == without.status, (what, with_lane.body, without.body)
        assert with_lane.headers == without.headers, what
        assert with_lane.body == without.body, what
        return with_lane

    async def post(self, path: str, body: Any, *, headers: Any = None, **kw: Any) -> Answer:
        """POST ``body`` (bytes as they are, anything else as JSON) with ``headers``; None: a JSON
        content type."""
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        if headers is None:
            headers = {"content-type": "application/json"}
        return await self.send("POST", path, content=content, headers=headers, **kw)

    async def add_key(self, label: str, scopes: str, **kw: Any) -> None:
        for side in (self.lane, self.route):
            key, side.keys[label] = await create_key(
                side.svc.db, name=label, scopes=scopes.split(","), **kw
            )
            side.key_ids[key.id.encode()] = label.encode()


@pytest.fixture(autouse=True)
def count_lane_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    original = fast_lane.answer
    LANE_ANSWERS.clear()

    async def counted(plan: LanePlan, request: Request) -> Response | None:
        try:
            response = await original(plan, request)
        except Exception:  # answered by the app's error handlers, from the lane
            LANE_ANSWERS.append(plan.path)
            raise
        if response is not None:
            LANE_ANSWERS.append(plan.path)
        return response

    monkeypatch.setattr(fast_lane, "answer", counted)


def without_lane(app: FastAPI) -> FastAPI:
    """``app`` with every request going through FastAPI's routing (before it starts)."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastLane]
    return app


@contextlib.asynccontextmanager
async def serve(
    settings: Settings, *, lane: bool, worker: bool, change: Change | None = None
) -> AsyncIterator[Side]:
    app = create_app(settings, worker=worker)
    if change is not None:
        change(app)
    if not lane:
        without_lane(app)
    async with app.router.lifespan_context(app):
        # an unhandled error is answered as a server answers it (500), not raised in the test
        transport = httpx.ASGITransport(app=app, client=LOOPBACK, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8000", timeout=30
        ) as client:
            yield Side(app, client)


@contextlib.asynccontextmanager
async def pair(
    root: Path, *, worker: bool = False, change: Change | None = None, **overrides: Any
) -> AsyncIterator[Pair]:
    """The two servers, each on its own data directory under ``root``; ``change`` is applied to
    both apps before they start (a route added or replaced, a dependency overridden)."""
    sides = []
    async with contextlib.AsyncExitStack() as stack:
        for name, lane in (("lane", True), ("route", False)):
            settings = Settings(
                data_dir=root / name, log_level="WARNING", secret_key=SECRET, **overrides
            )
            served = serve(settings, lane=lane, worker=worker, change=change)
            sides.append(await stack.enter_async_context(served))
        yield Pair(*sides)
