"""A finished job's image, as the adapters hand it out: its bytes, its URL, or the stored object.

One place reads storage and delivery for the API (OpenAI ``b64_json``/``url``, the signed and
public image routes), the in-process batch runner and ``Pipeline.generate``.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from pixelpipe.errors import NotFound
from pixelpipe.jobs.model import Job
from pixelpipe.services import Services
from pixelpipe.worker.moderation import QUARANTINE_PREFIX


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An object to send: a file the server can send itself (``path``) or its bytes (``data``)."""

    content_type: str
    path: Path | None = None
    data: bytes | None = None


def _key(job: Job) -> str:
    if job.storage_key is None:
        raise NotFound(f"generation {job.id} has no image ({job.status})")
    return job.storage_key


async def image_bytes(svc: Services, job: Job) -> bytes:
    """The stored image of a finished job (NotFound when it has none): handed over by this
    process's worker when it just stored it for a waiter here, else read from storage."""
    handed = svc.completion_hooks.take_image(job.id)
    return handed if handed is not None else await svc.storage.get(_key(job))


async def image_url(svc: Services, job: Job) -> str:
    """The URL clients fetch the image from: signed, presigned or public per the delivery mode
    (an app path such as ``/v1/images/…`` when the app serves it: the adapter makes it absolute)."""
    return await svc.delivery.url_for(_key(job))


async def local_image_url(svc: Services, job: Job) -> str:
    """The image's URL for a process with no server: a ``file://`` path (local storage), the
    bucket's URL, or the public URL (``Delivery.local_url``)."""
    return await svc.delivery.local_url(_key(job))


async def stored_image(svc: Services, key: str) -> StoredImage:
    """The object under ``key`` for the image routes (the signature was checked by the caller).
    Quarantined images (blocked by moderation) are never served, signed or not."""
    if key.startswith(QUARANTINE_PREFIX):
        raise NotFound("no such image")
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    path = svc.storage.local_path(key)
    if path is not None:
        if not path.is_file():
            raise NotFound("no such image")
        return StoredImage(content_type, path=path)
    return StoredImage(content_type, data=await svc.storage.get(key))
