"""In-process harness: the real app (``create_app``) with its lifespan, driven over ASGI.

The app runs exactly as under ``pixelpipe serve`` (middleware, services, the embedded dispatcher and
sweeper); only the socket is replaced by httpx's ASGI transport, whose peer address is chosen per
client (loopback by default) so that the "auth off on loopback" rules can be exercised.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from fastapi import FastAPI

from pixelpipe.api.app import create_app
from pixelpipe.errors import OutputFetchError
from pixelpipe.fetch import guard
from pixelpipe.fetch.addresses import IPAddress, is_loopback_name
from pixelpipe.security.keys import create_key
from pixelpipe.services import Services
from pixelpipe.settings import Settings

LOOPBACK = ("127.0.0.1", 50123)
_RESOLVE = guard.resolve_host  # the real resolver, for loopback names


@dataclass
class Running:
    app: FastAPI
    settings: Settings

    @property
    def svc(self) -> Services:
        svc: Services = self.app.state.services
        return svc

    def client(
        self, client: tuple[str, int] = LOOPBACK, headers: dict[str, str] | None = None
    ) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=client)
        return httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8000", headers=headers, timeout=30
        )

    async def key(self, scopes: str = "generate,read", rpm: int = 0, name: str = "t") -> str:
        _, secret = await create_key(self.svc.db, name=name, scopes=scopes.split(","), rpm=rpm)
        return secret


@contextlib.asynccontextmanager
async def running_app(data_dir: Path, **overrides: Any) -> AsyncIterator[Running]:
    """The app, its lifespan run. Its background webhook deliveries resolve no public name: a
    job with a webhook on ``hooks.example.com`` would ask the machine's resolver (traffic off
    loopback; a slow resolver once held a test's teardown past its timeout); such a name
    answers "no such host" at once, as the resolver would here, and loopback names resolve."""
    settings = Settings(data_dir=data_dir, log_level="WARNING", **overrides)
    app = create_app(settings)
    with mock.patch.object(guard, "resolve_host", _loopback_only):
        async with app.router.lifespan_context(app):
            yield Running(app, settings)


async def _loopback_only(host: str, port: int) -> list[IPAddress]:
    if is_loopback_name(host):
        return await _RESOLVE(host, port)
    raise OutputFetchError(f"cannot resolve output host {host}", transient=True)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def is_problem(resp: httpx.Response) -> bool:
    return resp.headers.get("content-type", "").startswith("application/problem+json")
