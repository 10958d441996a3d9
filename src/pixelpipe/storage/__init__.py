"""Stage 10 — durable object storage for images.

:func:`open_storage` picks the backend from settings; :class:`Storage` is the protocol every backend
(and the :class:`MemoryStorage` fake) implements. ``LocalDiskStorage`` and ``S3Storage`` are
imported on first use, so importing this package never loads obstore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixelpipe.storage.base import IMMUTABLE, Storage, StoredObject
from pixelpipe.storage.factory import open_storage
from pixelpipe.storage.memory import MemoryStorage

if TYPE_CHECKING:
    from pixelpipe.storage.local import LocalDiskStorage
    from pixelpipe.storage.s3 import S3Storage

__all__ = [
    "IMMUTABLE",
    "LocalDiskStorage",
    "MemoryStorage",
    "S3Storage",
    "Storage",
    "StoredObject",
    "open_storage",
]

_LAZY = {
    "LocalDiskStorage": "pixelpipe.storage.local",
    "S3Storage": "pixelpipe.storage.s3",
}


def __getattr__(name: str) -> Any:
    """Import the concrete backends only when someone asks for them."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
