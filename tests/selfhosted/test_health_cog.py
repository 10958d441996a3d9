"""cog's ``/health-check`` statuses as backend health. The real server's READY and BUSY are
tested in tests/providers/test_cog.py; the states it reaches only by failing (SETUP_FAILED,
DEFUNCT, UNHEALTHY) or while loading (STARTING) are served here by a stand-in over a socket."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixelpipe.fakes.server import serve_app
from pixelpipe.providers.base import HealthState, ReportsHealth
from pixelpipe.providers.cog.client import CogProvider


def health_check(status: str | None) -> Starlette:
    async def answer(request: Request) -> Response:
        if status is None:
            return Response("Internal Server Error", status_code=500)
        return JSONResponse({"status": status, "setup": {"status": "succeeded"}})

    return Starlette(routes=[Route("/health-check", answer)])


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("READY", HealthState.READY),
        ("BUSY", HealthState.BUSY),
        ("STARTING", HealthState.STARTING),
        ("SETUP_FAILED", HealthState.DOWN),
        ("DEFUNCT", HealthState.DOWN),
        ("UNHEALTHY", HealthState.DOWN),
        ("SOMETHING_NEW", HealthState.DOWN),
        (None, HealthState.DOWN),  # a 500
    ],
)
async def test_cog_statuses_as_backend_health(status: str | None, state: HealthState) -> None:
    async with serve_app(health_check(status)) as url:
        cog = CogProvider("gpu_a", url, secret=b"k" * 32, slots=2)
        try:
            assert isinstance(cog, ReportsHealth)
            health = await cog.backend_health()
        finally:
            await cog.aclose()
    assert health.state is state
    assert health.busy_slots == (2 if state is HealthState.BUSY else None)
    if status is not None:
        assert health.detail == status
