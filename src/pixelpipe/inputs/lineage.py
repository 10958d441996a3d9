"""Lineage: which generation an input image came from, when it came from the gallery.

When an edit names a gallery image (a generation id, or one of this server's image URLs), its
bytes are copied in as an input and the source generation is written beside the input, first
writer wins, as a small immutable object ``inputs/sources/<hex>`` holding the generation id. A
job's inputs are its request's digests (``CanonicalRequest.images`` / ``mask``); rendering a
job looks each one's source up. Inputs and their sources are objects of their own: deleting the
source generation (its image, its row) leaves the input, and the lineage record, in place.
"""

from __future__ import annotations

from typing import Any

from pixelpipe.errors import NotFound
from pixelpipe.inputs.store import upload_id
from pixelpipe.intake import CanonicalRequest
from pixelpipe.storage import Storage


def _source_key(digest: str) -> str:
    return f"inputs/sources/{digest.removeprefix('sha256:')}"


async def record_source(storage: Storage, digest: str, generation_id: str) -> None:
    await storage.put(_source_key(digest), generation_id.encode(), content_type="text/plain")


async def source_of(storage: Storage, digest: str) -> str | None:
    try:
        return (await storage.get(_source_key(digest))).decode()
    except NotFound:
        return None


async def render_inputs(storage: Storage, req: CanonicalRequest) -> list[dict[str, Any]]:
    """A job's ``inputs`` as the API shows them: role, digest, upload id, source generation."""
    roles = [("image", d) for d in req.images]
    if req.mask is not None:
        roles.append(("mask", req.mask))
    return [
        {
            "role": role,
            "digest": digest,
            "id": upload_id(digest),
            "source_generation": await source_of(storage, digest),
        }
        for role, digest in roles
    ]
