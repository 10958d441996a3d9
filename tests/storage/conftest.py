"""Backends under test (server fixtures come from the suite-wide ``tests.servers.fixtures``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.settings import Settings
from pixelpipe.storage import LocalDiskStorage, MemoryStorage, S3Storage, Storage

BACKENDS = ["memory", "local", pytest.param("s3", marks=pytest.mark.servers)]


def s3_storage(tmp_path: Path, overrides: dict[str, str]) -> S3Storage:
    return S3Storage.from_settings(Settings(data_dir=tmp_path, **overrides))  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Each backend, empty: S3 under a prefix of its own on the session's SeaweedFS."""
    backend: Storage
    if request.param == "memory":
        backend = MemoryStorage()
    elif request.param == "local":
        backend = LocalDiskStorage(tmp_path / "images")
    else:
        backend = s3_storage(tmp_path, request.getfixturevalue("s3_settings"))
    yield backend
    await backend.aclose()
