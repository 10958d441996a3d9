"""``POST /v1/uploads``: store an input image (for an edit) and answer its id.

Multipart, one field ``file`` (PNG, JPEG or WebP; at most ``PIXELPIPE_MAX_UPLOAD_BYTES``, 25 MiB,
and 40 megapixels). The image is verified like a provider output and stripped of its metadata
(:mod:`pixelpipe.inputs`); the id is derived from the stripped bytes' sha256, so the same picture
uploaded twice is the same id. Pass the id in a generation's ``images`` (or ``mask``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from pixelpipe.api.deps import CallerDep, ServicesDep, request_body
from pixelpipe.api.multipart import files_named, form_parts
from pixelpipe.errors import InvalidRequest
from pixelpipe.inputs import InputLimits, StoredInput, store_input

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])

_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        }
    },
}


class UploadPublic(BaseModel):
    id: str = Field(..., description="Pass it in a generation's images or mask.")
    digest: str = Field(..., description="sha256:<hex> of the stored (metadata-free) bytes.")
    content_type: str
    width: int
    height: int
    bytes: int


def render_upload(stored: StoredInput) -> UploadPublic:
    return UploadPublic(
        id=stored.id,
        digest=stored.digest,
        content_type=stored.content_type,
        width=stored.width,
        height=stored.height,
        bytes=stored.bytes,
    )


@router.post(
    "",
    response_model=UploadPublic,
    openapi_extra={"requestBody": _BODY},
    responses={
        413: {"description": "Larger than PIXELPIPE_MAX_UPLOAD_BYTES (problem+json)"},
        422: {"description": "Not a usable image: format, pixels, bomb (problem+json)"},
    },
)
async def create_upload(request: Request, svc: ServicesDep, caller: CallerDep) -> UploadPublic:
    """Store an input image: verified, metadata (EXIF, GPS) stripped, content-addressed."""
    del caller  # authenticated (scope generate) by the security layer
    parts = form_parts(request.headers.get("content-type", ""), await request_body(request))
    files = files_named(parts, "file")
    if len(files) != 1:
        raise InvalidRequest(
            "send exactly one image in the multipart field `file` (curl -F file=@photo.png)",
            field="file",
        )
    limits = InputLimits.from_settings(svc.settings)
    return render_upload(await store_input(svc.storage, files[0].data, limits, field="file"))
