"""A zip of 1,000 images is streamed: memory stays bounded while the archive grows to ~64 MB."""

from __future__ import annotations

import os
import time
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.services import Services
from pixelpipe.settings import load_settings
from pixelpipe.usecases import gallery_archive

from .seed import finished_job, seed

N = 1_000
IMAGE = 64 * 1024  # random bytes: nothing compresses, as with real PNGs
BOUND = 8 * 1024 * 1024  # Python allocations while streaming; the archive is ~8× that


@pytest.fixture
async def local_svc(tmp_path: Path) -> AsyncIterator[Services]:
    """SQLite and storage on local disk (images are read in pieces)."""
    services = await build_services(load_settings(data_dir=tmp_path))
    try:
        yield services
    finally:
        await services.aclose()


@pytest.mark.slow
async def test_a_thousand_images_stream_in_bounded_memory(
    local_svc: Services, tmp_path: Path
) -> None:
    t0 = time.time() - N
    ids = []
    for i in range(N):
        job = finished_job(f"image {i}", at=t0 + i, cost=1_000 * i)
        ids.append((await seed(local_svc.store, job, local_svc.storage, os.urandom(IMAGE))).id)
    archive = gallery_archive.prepare(ids)
    out = tmp_path / "out.zip"
    tracemalloc.start()
    try:
        written, pieces = 0, 0
        with out.open("wb") as f:
            async for piece in gallery_archive.stream(local_svc, archive):
                f.write(piece)
                written += len(piece)
                pieces += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert written > N * IMAGE and pieces > N  # streamed in pieces, not one blob
    assert peak < BOUND, f"peak {peak / 1e6:.1f} MB while streaming {written / 1e6:.1f} MB"
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert len([n for n in names if n.startswith("images/")]) == N
        assert zf.testzip() is None
        assert zf.read("metadata.csv").count(b"\r\n") == N + 1
