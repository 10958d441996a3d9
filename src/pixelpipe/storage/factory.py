"""Pick the storage backend from ``settings.effective_storage_url`` (the only place that does).

:data:`BACKENDS` is the one list of storage backends: URL scheme → how to open it. Settings, the
usage report (:func:`storage_scheme`) and every error message read it, so a new backend is a
module beside this one plus one entry here (CONTRIBUTING.md, "A storage backend").

Backends are imported when opened, so that the embedded default (local disk) never loads the S3
client, and so that a missing optional piece fails with a message that says what to install.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pixelpipe.errors import ConfigError
from pixelpipe.settings import Settings
from pixelpipe.storage.base import Storage


@dataclass(frozen=True, slots=True)
class StorageBackend:
    example: str  # the URL form users write, shown in errors
    open: Callable[[Settings, str], Storage]


def _local(settings: Settings, url: str) -> Storage:
    from pixelpipe.storage.local import LocalDiskStorage

    return LocalDiskStorage.from_url(url)


def _s3(settings: Settings, url: str) -> Storage:
    try:
        from pixelpipe.storage.s3 import S3Storage
    except ImportError as exc:  # obstore is a core dependency, but a broken install says so here
        raise ConfigError(
            "S3 storage needs obstore: `pip install 'obstore>=0.12,<0.13'` (or reinstall pixelpipe)"
        ) from exc
    return S3Storage.from_settings(settings)


def _memory(settings: Settings, url: str) -> Storage:
    from pixelpipe.storage.memory import MemoryStorage

    return MemoryStorage()


BACKENDS: dict[str, StorageBackend] = {
    "file": StorageBackend("file:///dir", _local),
    "s3": StorageBackend("s3://bucket[/prefix]", _s3),
    "r2": StorageBackend("r2://bucket", _s3),
    "memory": StorageBackend("memory://", _memory),
}


def storage_scheme(url: str) -> str:
    """The backend ``url`` names (its scheme); ConfigError saying which URLs work otherwise."""
    scheme = urlsplit(url).scheme
    if scheme not in BACKENDS:
        forms = [b.example for b in BACKENDS.values()]
        raise ConfigError(
            f"PIXELPIPE_STORAGE_URL: unsupported scheme {scheme!r}; use "
            f"{', '.join(forms[:-1])} or {forms[-1]}"
        )
    return scheme


def open_storage(settings: Settings) -> Storage:
    """The backend ``settings.effective_storage_url`` names (``file://`` by default)."""
    url = settings.effective_storage_url
    return BACKENDS[storage_scheme(url)].open(settings, url)
