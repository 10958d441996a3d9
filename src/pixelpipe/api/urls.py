"""The one rule for URLs the API answers with: absolute, from ``PIXELPIPE_PUBLIC_URL``, else from
the request's own base URL (scheme, host and root path the client called).

Computed once per request (:func:`request_base`) and handed to the renderers; image URLs that
delivery already made absolute (a presigned bucket URL, ``PIXELPIPE_DELIVERY_BASE_URL``, an app
URL under ``PIXELPIPE_PUBLIC_URL``) are left as they are.
"""

from __future__ import annotations

from starlette.requests import Request

from pixelpipe.bootstrap import Services


def request_base(svc: Services, request: Request) -> str:
    """``https://host[:port][/root]`` without a trailing slash."""
    public = svc.settings.public_url
    if public:
        return public.rstrip("/")
    return str(request.base_url).rstrip("/")


def absolute(url: str, base: str) -> str:
    """``url`` on ``base`` when it is a path on this server, else unchanged."""
    return base + url if url.startswith("/") else url
