"""The one rule for URLs the API answers with: absolute, from ``PIXELPIPE_PUBLIC_URL``, else from
the request's own base URL (scheme, host and root path the client called).

Computed once per request (:func:`request_base`) and handed to the renderers; image URLs that
delivery already made absolute (a presigned bucket URL, ``PIXELPIPE_DELIVERY_BASE_URL``, an app
URL under ``PIXELPIPE_PUBLIC_URL``) are left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from pixelpipe.services import Services


def request_base(svc: Services, request: Request) -> str:
    """``https://host[:port][/root]`` without a trailing slash."""
    public = svc.settings.public_url
    if public:
        return public.rstrip("/")
    return scope_base(request.scope)


def scope_base(scope: Mapping[str, Any]) -> str:
    """What ``str(request.base_url).rstrip("/")`` gives, read straight from the ASGI scope
    (~1.5 µs instead of Starlette's ~17-40 µs: it parses and rebuilds a URL object)."""
    scheme = str(scope.get("scheme", "http"))
    root_path = str(scope.get("root_path", ""))
    host = None
    for name, value in scope.get("headers") or ():
        if name == b"host":
            host = value.decode("latin-1")
            break
    if host is None:
        server = scope.get("server")
        if server is None:
            return root_path.rstrip("/")
        name, port = server
        default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
        host = name if port == default else f"{name}:{port}"
    return f"{scheme}://{host}{root_path}".rstrip("/")


def absolute(url: str, base: str) -> str:
    """``url`` on ``base`` when it is a path on this server, else unchanged."""
    return base + url if url.startswith("/") else url
