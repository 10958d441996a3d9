"""Image delivery for app-served storage: HMAC-signed expiring URLs, and opt-in public URLs."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response

from pixelpipe.api.deps import ServicesDep
from pixelpipe.delivery.signing import verify
from pixelpipe.errors import NotFound
from pixelpipe.services import Services
from pixelpipe.storage.base import IMMUTABLE
from pixelpipe.usecases.images import stored_image

router = APIRouter(tags=["images"])


async def _serve(svc: Services, key: str, cache_control: str) -> Response:
    image = await stored_image(svc, key)
    headers = {"Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}
    if image.path is not None:
        return FileResponse(image.path, media_type=image.content_type, headers=headers)
    return Response(image.data, media_type=image.content_type, headers=headers)


@router.get("/v1/images/{key:path}", responses={403: {"description": "Bad or expired signature"}})
async def signed_image(
    key: str,
    svc: ServicesDep,
    exp: Annotated[int, Query(description="expiry, unix seconds")],
    sig: Annotated[str, Query(max_length=200)],
) -> Response:
    """An image behind a signed URL (the URL is handed out in the generation resource)."""
    verify(key, exp, sig, svc.settings.signing_key(), now=time.time())
    remaining = max(0, exp - int(time.time()))
    return await _serve(svc, key, f"private, max-age={remaining}, immutable")


@router.get("/i/{key:path}", responses={404: {"description": "Not found or public delivery off"}})
async def public_image(key: str, svc: ServicesDep) -> Response:
    """Public immutable delivery, only when PIXELPIPE_DELIVERY=public."""
    if svc.settings.delivery != "public":
        raise NotFound("public delivery is off; use the signed URL from the generation")
    return await _serve(svc, key, IMMUTABLE)
