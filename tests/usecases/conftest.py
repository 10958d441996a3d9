"""Services on SQLite and in-memory storage, built as ``pixelpipe serve`` builds them; no worker
runs unless a test starts one (:func:`pixelpipe.usecases.worker_lifecycle.embedded_worker`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.intake import GenerationRequest
from pixelpipe.services import Services
from pixelpipe.settings import load_settings


def body(prompt: str, **fields: object) -> GenerationRequest:
    defaults: dict[str, object] = {"model": "preview", "seed": 1, "size": "64x64"}
    return GenerationRequest.model_validate({"prompt": prompt, **defaults, **fields})


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    services = await build_services(load_settings(data_dir=tmp_path, storage_url="memory://"))
    try:
        yield services
    finally:
        await services.aclose()
