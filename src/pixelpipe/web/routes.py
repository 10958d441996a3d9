"""The web page: server-rendered shells plus static JS that talks only to the public HTTP API.

The templates carry no data from the use cases: every number, image and status on the page
comes from ``/v1/...`` calls made by ``static/js`` (the same API documented in OpenAPI). The server
only renders the layout (navigation, cost counter frame, empty forms) and serves static files.

Pages send a strict Content-Security-Policy: no inline script, no inline style attributes.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

from pixelpipe.providers.registry import display_names
from pixelpipe.version import __version__

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"

CSP = (
    "default-src 'self'; img-src 'self' data: blob: https:; script-src 'self'; "
    "style-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
router = APIRouter(include_in_schema=False)


@functools.cache
def asset_version() -> str:
    """A short hash of every static file: appended to asset URLs so a new release busts caches."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


NAV = (
    ("generate", "/", "Generate"),
    ("gallery", "/gallery", "Gallery"),
    ("compare", "/compare", "Compare"),
    ("queue", "/queue", "Queue"),
)


def _page(request: Request, template: str, page: str, title: str, **ctx: Any) -> HTMLResponse:
    context = {
        "page": page,
        "title": title,
        "nav": NAV,
        "v": asset_version(),
        "version": __version__,
        "providers": display_names(),  # provider -> display name, for the page's messages
        **ctx,
    }
    return templates.TemplateResponse(request, template, context, headers=SECURITY_HEADERS)


@router.get("/", response_class=HTMLResponse)
async def generate_page(request: Request) -> HTMLResponse:
    return _page(request, "generate.html", "generate", "Generate")


@router.get("/gallery", response_class=HTMLResponse)
async def gallery_page(request: Request) -> HTMLResponse:
    return _page(request, "gallery.html", "gallery", "Gallery")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(request: Request, job_id: str) -> HTMLResponse:
    return _page(request, "job.html", "job", "Generation", job_id=job_id)


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(request: Request) -> HTMLResponse:
    return _page(request, "compare.html", "compare", "Compare models", group="")


@router.get("/compare/{group}", response_class=HTMLResponse)
async def comparison_page(request: Request, group: str) -> HTMLResponse:
    return _page(request, "compare.html", "compare", "Comparison", group=group)


@router.get("/moderation", response_class=HTMLResponse)
async def moderation_page(request: Request) -> HTMLResponse:
    return _page(request, "moderation.html", "moderation", "Moderation")


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request) -> HTMLResponse:
    return _page(request, "queue.html", "queue", "Queue")


@router.get("/favicon.ico")
async def favicon() -> Response:
    return RedirectResponse(f"/static/img/favicon.svg?v={asset_version()}", status_code=308)


class _Static(StaticFiles):
    """Static files, revalidated on each load (URLs carry ``?v=`` for cache busting)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def install(app: FastAPI) -> None:
    """Add the page routes and the static files to ``app`` (called by the app factory)."""
    app.include_router(router)
    app.mount("/static", _Static(directory=STATIC_DIR), name="static")
