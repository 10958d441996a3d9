"""Stage 10 boundary — durable object storage for images.

Keys are the sharded names from :func:`pixelpipe.key.storage_key`
(``<model>/<2 hex>/<hash>.<ext>``). Objects are immutable: ``put`` of an existing key is a no-op
success (idempotent, content-addressed).
Errors are translated to :class:`pixelpipe.errors.StorageError` (retryable) / ``NotFound``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    content_type: str | None


@runtime_checkable
class Storage(Protocol):
    """Implementations: LocalDiskStorage (file://), S3Storage (s3://, r2://), MemoryStorage."""

    scheme: str

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store atomically with Content-Type and ``Cache-Control: IMMUTABLE``; idempotent."""
        ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; raises errors.NotFound."""
        ...

    async def head(self, key: str) -> StoredObject | None: ...

    async def delete(self, key: str) -> None: ...

    async def presigned_url(self, key: str, *, expires_in: int) -> str | None:
        """A direct, expiring GET URL, or None when the app must serve the object itself."""
        ...

    def local_path(self, key: str) -> Path | None:
        """Filesystem path for app-served backends (sendfile), else None."""
        ...

    async def check(self) -> None:
        """Readiness probe: raise errors.StorageError when the backend is unreachable."""
        ...

    async def aclose(self) -> None: ...
