"""The ASGI application factory. Settings come in; nothing is built at import time."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI

from pixelpipe.api import openapi_doc, problems
from pixelpipe.api.fast_lane import FastLane
from pixelpipe.api.middleware import install as install_security
from pixelpipe.api.routes_generations import router as generations_router
from pixelpipe.api.routes_images import router as images_router
from pixelpipe.api.routes_meta import router as meta_router
from pixelpipe.api.routes_uploads import router as uploads_router
from pixelpipe.api.routes_webhooks import router as webhooks_router
from pixelpipe.bootstrap import build_services
from pixelpipe.settings import Settings
from pixelpipe.usecases.worker_lifecycle import embedded_worker
from pixelpipe.version import __version__

DESCRIPTION = """
pixelpipe turns a prompt into an image that is stored durably, delivered by URL and paid for
exactly once. Errors are `application/problem+json` with a stable `code`.
"""


def create_app(
    settings: Settings, *, worker: bool | None = None, freeze_gc: bool = False
) -> FastAPI:
    """Build the app; ``worker`` (default: settings.embedded_worker) runs steps in-process.

    ``freeze_gc`` (the serving processes): once started, move every object built so far (the
    services, engines, compiled schemas, …) out of the cyclic collector's reach, so that a full
    collection under load scans only what requests allocate — one took ~150 ms otherwise."""
    run_worker = settings.embedded_worker if worker is None else worker

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = await build_services(settings)
        await app.state.auth.start(svc.db)  # whether keys exist is known before serving
        app.state.services = svc
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            if run_worker:
                async with embedded_worker(svc, grace_s=5.0):
                    yield
            else:
                yield
        finally:
            app.state.auth.stop()
            await svc.aclose()

    app = FastAPI(
        title="pixelpipe",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=None if settings.otel else {"tracing": False, "metrics": False, "logs": False},
    )
    problems.install(app)
    app.add_middleware(FastLane)  # innermost: the hot POSTs skip FastAPI, not the security layers
    install_security(app, settings)  # headers, API keys, body/JSON limits (issue 7)
    for router in (generations_router, meta_router, images_router, webhooks_router, uploads_router):
        app.include_router(router)
    _include_optional(app)
    openapi_doc.install(app)  # /openapi.json documents the errors every layer answers
    return app


def _include_optional(app: FastAPI) -> None:
    """Routers owned by other stages (web page, usage reports) when present."""
    for module in (
        "pixelpipe.web.routes",
        "pixelpipe.api.routes_usage",
        "pixelpipe.api.routes_openai",
        "pixelpipe.api.routes_gallery",
        "pixelpipe.api.routes_boards",
        "pixelpipe.api.routes_queue",
    ):
        try:
            mod = __import__(module, fromlist=["router"])
        except ModuleNotFoundError:
            continue
        if hasattr(mod, "install"):
            mod.install(app)
        else:
            app.include_router(mod.router)
