"""What an image costs on a self-hosted backend beside a hosted provider ("what does my GPU cost
per image vs Replicate?"): runs priced in GPU time on real backends of a catalog file, read back
by the usage use case, ``pixelpipe usage`` and ``GET /v1/usage``."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pixelpipe.api import problems
from pixelpipe.api.routes_usage import router
from pixelpipe.ledger import Charge, MemoryLedger, Price
from pixelpipe.moderation.stage import Moderation
from pixelpipe.pipeline import Pipeline
from pixelpipe.pricing import load_price_table
from pixelpipe.settings import load_settings
from pixelpipe.usecases.usage import books_of, usage_report
from tests.support.serve import CLI

from .test_gpu_time_billing import FILE

pytestmark = pytest.mark.usefixtures("gpukind")


def by_model(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["model"]: r for r in rows}


async def test_gpu_cost_per_image_from_real_runs(
    tmp_path: Path, catalog_file: Callable[[str], Path]
) -> None:
    catalog = catalog_file(FILE)
    settings = load_settings(data_dir=tmp_path / "data", catalog_path=catalog)
    async with Pipeline(settings) as p:
        for seed in (1, 2):
            await p.generate("a fox", model="house", seed=seed)  # 2.0 s (server) × $3.6/h
        await p.generate("a fox", model="walled", seed=1)  # pixelpipe's wall time
        await p.generate("a fox", model="unpriced", seed=1)  # no rate: unpriced, not $0
        report = await usage_report(books_of(p.services), "provider")
    rows = {r.provider: r for r in report.per_image.providers}
    assert set(rows) == {"gpu_a", "gpu_w", "gpu_free"}
    house = rows["gpu_a"]
    assert (house.images, house.spent_micros, house.micros_per_image) == (2, 4_000, 2_000)
    assert (house.gpu_seconds, house.gpu_seconds_per_image) == (4.0, 2.0)
    assert house.gpu_time_source == "server"
    assert rows["gpu_w"].gpu_time_source == "wall"
    free = rows["gpu_free"]
    assert (free.images, free.unpriced_images, free.micros_per_image) == (1, 1, None)
    assert [(r.model, r.provider) for r in report.per_image.models] == [
        ("house", "gpu_a"),
        ("unpriced", "gpu_free"),
        ("walled", "gpu_w"),
    ]

    env = {"PATH": "/usr/bin:/bin", "PIXELPIPE_DATA_DIR": str(tmp_path / "data")}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run(
        [*CLI, "usage", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    models = by_model(json.loads(done.stdout)["per_image"]["models"])
    assert models["house"]["usd_per_image"] == "0.002"
    assert models["house"]["gpu"] == {
        "seconds": 4.0,
        "seconds_per_image": 2.0,
        "source": "server",
        "server_timed": 2,
        "wall_timed": 0,
    }
    assert models["unpriced"]["usd_per_image"] is None
    table = subprocess.run(
        [*CLI, "usage"], env=env | {"COLUMNS": "160"}, capture_output=True, text=True, timeout=120
    )
    assert "cost per image" in table.stdout
    line = next(x for x in table.stdout.splitlines() if "house" in x and "gpu_a" in x)
    assert "$0.0020" in line and "2.00" in line and "server" in line


async def test_the_usage_route_shows_gpu_beside_hosted() -> None:
    ledger = MemoryLedger()
    gpu = {"gpu_time_source": "server", "usd_per_gpu_hour": "1.8"}
    for job, seconds in (("j1", 0.6), ("j2", 0.5)):
        detail = gpu | {"gpu_seconds": seconds}
        micros = round(seconds * 500)  # $1.8/h = 500 µ$/s
        await ledger.record(
            Charge(job, 1, "gpu_a", job, "flux-schnell", "attempt",
                   Price(micros, "v", "gpu_time"), detail={"state": "succeeded", **detail})
        )  # fmt: skip
    hosted = Price(3_000, "v", "per_image")
    await ledger.record(
        Charge("j3", 1, "replicate", "r3", "flux-schnell", "attempt", hosted,
               detail={"state": "succeeded"})
    )  # fmt: skip
    app = FastAPI()
    problems.install(app)
    app.include_router(router)
    app.state.services = SimpleNamespace(
        ledger=ledger,
        store=None,
        storage=SimpleNamespace(scheme=None),
        prices=load_price_table(),
        moderation=Moderation(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = (await client.get("/v1/usage", params={"group_by": "provider"})).json()
    providers = {r["provider"]: r for r in body["per_image"]["providers"]}
    assert providers["gpu_a"]["usd_per_image"] == "0.000275"  # (300 + 250) / 2 µ$
    assert providers["gpu_a"]["gpu"]["seconds_per_image"] == 0.55
    assert providers["replicate"]["usd_per_image"] == "0.003"
    assert providers["replicate"]["gpu"] is None
    assert [r["group"] for r in body["rows"]] == ["gpu_a", "replicate"]  # the rows, unchanged
