"""Fixtures: each fake provider served by uvicorn on a free 127.0.0.1 port, and a webhook receiver.

Every test here talks to the fakes over real sockets; nothing is mocked at the HTTP layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pixelpipe.catalog import load_catalog
from pixelpipe.fakes.common import Behaviour
from pixelpipe.fakes.fal import FakeFal
from pixelpipe.fakes.openai import FakeOpenAI
from pixelpipe.fakes.replicate import FakeReplicate
from pixelpipe.fakes.server import serve_app
from pixelpipe.intake import CanonicalRequest, GenerationRequest, canonicalize
from pixelpipe.providers.base import ProviderRequest

CATALOG = load_catalog()
REPLICATE_TOKEN = "r8_test_token_abcdef"
FAL_KEY = "fal-key-id:fal-key-secret-123"
OPENAI_KEY = "sk-test-key-0123456789"


def canon(**kw: Any) -> CanonicalRequest:
    kw.setdefault("seed", 42)
    kw.setdefault("prompt", "a red fox")
    return canonicalize(GenerationRequest(**kw), CATALOG)


def preq(provider: str, webhook_url: str | None = None, **kw: Any) -> ProviderRequest:
    """A ProviderRequest for a catalog model on ``provider``."""
    req = canon(**kw)
    model_id = CATALOG.get(req.model).provider_ids[provider]
    return ProviderRequest("job_1", 1, req, model_id, webhook_url)


def fast() -> Behaviour:
    return Behaviour(latency_s=0.3, webhook_retry_delays_s=[0.05, 0.1, 0.2])


@dataclass
class Running:
    fake: Any
    url: str  # the base URL a client is given
    root: str = ""  # where /_control, /_stats and /files live (default: url)

    def __post_init__(self) -> None:
        self.root = self.root or self.url

    async def control(self, **changes: Any) -> dict[str, Any]:
        async with httpx.AsyncClient() as c:
            resp = await c.post(f"{self.root}/_control", json=changes)
            resp.raise_for_status()
            return dict(resp.json())

    async def stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as c:
            return dict((await c.get(f"{self.root}/_stats")).json())


@pytest.fixture
async def replicate_fake() -> AsyncIterator[Running]:
    fake = FakeReplicate(token=REPLICATE_TOKEN, behaviour=fast())
    async with serve_app(fake.app) as url:
        yield Running(fake, url)


@pytest.fixture
async def fal_fake() -> AsyncIterator[Running]:
    fake = FakeFal(key=FAL_KEY, behaviour=fast())
    async with serve_app(fake.app) as url:
        yield Running(fake, url)


@pytest.fixture
async def openai_fake() -> AsyncIterator[Running]:
    fake = FakeOpenAI(api_key=OPENAI_KEY, behaviour=fast())
    async with serve_app(fake.app) as url:
        yield Running(fake, url + "/v1", url)


@dataclass
class Receiver:
    """A tiny webhook endpoint: records deliveries; answers ``fail_first`` of them with 500."""

    url: str = ""
    fail_first: int = 0
    deliveries: asyncio.Queue[tuple[dict[str, str], bytes]] = field(default_factory=asyncio.Queue)
    attempts: int = 0

    async def handle(self, request: Request) -> Response:
        self.attempts += 1
        if self.fail_first > 0:
            self.fail_first -= 1
            return Response("try later", status_code=500)
        await self.deliveries.put((dict(request.headers), await request.body()))
        return Response(status_code=204)

    async def next(self, timeout: float = 5.0) -> tuple[dict[str, str], bytes]:
        return await asyncio.wait_for(self.deliveries.get(), timeout)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/hook", rec.handle, methods=["POST"])])
    async with serve_app(app) as url:
        rec.url = f"{url}/hook"
        yield rec
