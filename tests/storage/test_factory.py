"""open_storage picks the backend by URL; foreign errors are translated where they enter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from obstore import exceptions as obstore_errors

from pixelpipe.errors import ConfigError, NotFound, StorageError
from pixelpipe.settings import Settings
from pixelpipe.storage import LocalDiskStorage, MemoryStorage, S3Storage, factory, open_storage
from pixelpipe.storage._errors import translated


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path, **kw)


def test_default_is_local_disk_under_the_data_dir(tmp_path: Path) -> None:
    storage = open_storage(settings(tmp_path))
    assert isinstance(storage, LocalDiskStorage)
    assert storage.root == (tmp_path / "images").resolve()
    assert storage.scheme == "file"


def test_a_backend_is_one_entry_in_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BACKENDS is the one list: an entry makes its scheme open, valid and named in errors."""
    made = MemoryStorage()
    backend = factory.StorageBackend("acme://bucket", lambda _s, _url: made)
    monkeypatch.setitem(factory.BACKENDS, "acme", backend)
    assert open_storage(settings(tmp_path, storage_url="acme://bucket")) is made
    assert factory.storage_scheme("acme://bucket") == "acme"
    with pytest.raises(ConfigError) as info:
        factory.storage_scheme("ftp://x")
    assert "acme://bucket" in info.value.detail and "file:///dir" in info.value.detail


def test_memory_and_file_urls(tmp_path: Path) -> None:
    assert isinstance(open_storage(settings(tmp_path, storage_url="memory://")), MemoryStorage)
    disk = open_storage(settings(tmp_path, storage_url=(tmp_path / "x").as_uri()))
    assert isinstance(disk, LocalDiskStorage)
    assert disk.root == tmp_path / "x"


def test_s3_url_with_http_endpoint(tmp_path: Path) -> None:
    storage = open_storage(
        settings(tmp_path, storage_url="s3://bucket/pre/fix", s3_endpoint="http://127.0.0.1:9")
    )
    assert isinstance(storage, S3Storage)
    assert storage.scheme == "s3"
    assert storage.local_path("a/b.webp") is None


def test_r2_needs_an_endpoint_and_uses_region_auto(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PIXELPIPE_S3_ENDPOINT"):
        open_storage(settings(tmp_path, storage_url="r2://images"))
    storage = open_storage(
        settings(
            tmp_path,
            storage_url="r2://images/prod",
            s3_endpoint="https://acc.r2.cloudflarestorage.com",
            s3_access_key_id="id",
            s3_secret_access_key="secret",
        )
    )
    assert isinstance(storage, S3Storage)
    assert storage.scheme == "r2"
    assert storage._store.config["region"] == "auto"


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix-only"])
def test_s3_url_without_bucket_is_a_config_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError):
        open_storage(settings(tmp_path, storage_url=url))


def test_importing_the_package_does_not_load_obstore() -> None:
    code = "import sys, pixelpipe.storage; open('/dev/stdout','w').write(str('obstore' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "False"


FOREIGN: list[BaseException] = [
    OSError(5, "I/O error"),
    PermissionError(13, "denied"),
    TimeoutError("timed out"),
    *(
        cls("boom")
        for cls in (
            obstore_errors.GenericError,
            obstore_errors.PermissionDeniedError,
            obstore_errors.UnauthenticatedError,
            obstore_errors.PreconditionError,
            obstore_errors.JoinError,
        )
    ),
]


@pytest.mark.parametrize("exc", FOREIGN, ids=lambda e: type(e).__name__)
def test_every_foreign_error_becomes_a_retryable_storage_error(exc: BaseException) -> None:
    with (
        pytest.raises(StorageError) as caught,
        translated("s3", "put", "k.webp", (obstore_errors.BaseError, OSError)),
    ):
        raise exc
    assert caught.value.retryable
    assert caught.value.__cause__ is exc
    assert "boom" not in caught.value.detail  # foreign messages stay in the logs


def test_missing_object_becomes_not_found_for_reads_only() -> None:
    with pytest.raises(NotFound), translated("s3", "get", "k", (OSError,)):
        raise FileNotFoundError("gone")
    with (
        pytest.raises(StorageError),
        translated("s3", "put", "k", (OSError,), missing_is_not_found=False),
    ):
        raise FileNotFoundError("gone")
