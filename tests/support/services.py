"""The ``svc`` fixture, for every test that does not define its own: Services on SQLite and
in-memory storage, built as ``pixelpipe serve`` builds them; no worker runs unless a test starts
one (:func:`pixelpipe.usecases.worker_lifecycle.embedded_worker`). Loaded as a plugin by
``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.services import Services
from pixelpipe.settings import load_settings


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    services = await build_services(load_settings(data_dir=tmp_path, storage_url="memory://"))
    try:
        yield services
    finally:
        await services.aclose()
