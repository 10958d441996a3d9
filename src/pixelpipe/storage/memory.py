"""MemoryStorage — the fake shipped beside the real backends (``memory://``).

It keeps the contract of :class:`~pixelpipe.storage.base.Storage` (validated keys, first put wins,
NotFound on a missing key, no presigning) so that tests of everything above storage can run without
a disk or a server, and the same contract suite checks it against the real ones. Objects live in
this process only and vanish with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixelpipe.errors import NotFound
from pixelpipe.storage._keys import validate_content_type, validate_key
from pixelpipe.storage.base import StoredObject


@dataclass(frozen=True, slots=True)
class _Entry:
    data: bytes
    content_type: str


class MemoryStorage:
    """A dict of immutable objects; every method completes without awaiting anything."""

    scheme = "memory"

    def __init__(self) -> None:
        self._objects: dict[str, _Entry] = {}

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """First put wins, like the real backends; later puts of the key are no-ops."""
        validate_key(key)
        validate_content_type(content_type)
        self._objects.setdefault(key, _Entry(bytes(data), content_type))

    async def get(self, key: str) -> bytes:
        return self._entry(key).data

    async def head(self, key: str) -> StoredObject | None:
        entry = self._objects.get(validate_key(key))
        if entry is None:
            return None
        return StoredObject(key=key, size=len(entry.data), content_type=entry.content_type)

    async def delete(self, key: str) -> None:
        self._objects.pop(validate_key(key), None)

    async def presigned_url(self, key: str, *, expires_in: int) -> str | None:
        """None: like local disk, the app serves memory objects itself."""
        validate_key(key)
        return None

    def local_path(self, key: str) -> Path | None:
        validate_key(key)
        return None

    async def check(self) -> None:
        """Always ready: there is nothing to reach."""

    async def aclose(self) -> None:
        """Nothing to release; objects stay until the instance is garbage-collected."""

    def _entry(self, key: str) -> _Entry:
        entry = self._objects.get(validate_key(key))
        if entry is None:
            raise NotFound(f"no stored object {key!r}")
        return entry
