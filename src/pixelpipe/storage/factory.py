"""Pick the storage backend from ``settings.effective_storage_url`` (the only place that does).

Backends are imported lazily so that the embedded default (local disk) never loads the S3 client,
and so that a missing optional piece fails with a message that says what to install.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pixelpipe.errors import ConfigError
from pixelpipe.settings import Settings
from pixelpipe.storage.base import Storage


def open_storage(settings: Settings) -> Storage:
    """``file:///dir`` → LocalDiskStorage, ``s3://``/``r2://`` → S3Storage, ``memory://`` → fake."""
    url = settings.effective_storage_url
    scheme = urlsplit(url).scheme
    if scheme == "file":
        from pixelpipe.storage.local import LocalDiskStorage

        return LocalDiskStorage.from_url(url)
    if scheme in ("s3", "r2"):
        return _s3(settings)
    if scheme == "memory":
        from pixelpipe.storage.memory import MemoryStorage

        return MemoryStorage()
    raise ConfigError(
        f"PIXELPIPE_STORAGE_URL: unsupported scheme {scheme!r}; use file:///dir, "
        "s3://bucket[/prefix], r2://bucket or memory://"
    )


def _s3(settings: Settings) -> Storage:
    try:
        from pixelpipe.storage.s3 import S3Storage
    except ImportError as exc:  # obstore is a core dependency, but a broken install says so here
        raise ConfigError(
            "S3 storage needs obstore: `pip install 'obstore>=0.12,<0.13'` (or reinstall pixelpipe)"
        ) from exc
    return S3Storage.from_settings(settings)
