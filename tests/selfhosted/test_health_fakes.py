"""``pixelpipe fake-providers`` serves the self-hosted kinds' fakes too: the catalog file it
offers (``catalog_example``, also in ``GET BASE/``) runs a generation on each, and the health
checker finds both up."""

from __future__ import annotations

from pathlib import Path

import httpx

from pixelpipe.backend_health import check_once
from pixelpipe.fakes.server import FakeProviders, catalog_example, serve_app
from pixelpipe.pipeline import Pipeline
from pixelpipe.providers.base import HealthState
from pixelpipe.settings import load_settings


async def test_the_catalog_example_runs_on_the_mounted_fakes(tmp_path: Path) -> None:
    fakes = FakeProviders(latency_s=0.05)
    async with serve_app(fakes.app) as base:
        async with httpx.AsyncClient() as c:
            index = (await c.get(base + "/")).json()
        assert {"a1111", "openai_compatible"} <= set(index["fakes"])
        assert index["catalog_example"] == catalog_example(base)
        path = tmp_path / "catalog.toml"
        path.write_text(catalog_example(base))
        settings = load_settings(data_dir=tmp_path / "data", catalog_path=path)
        async with Pipeline(settings) as p:
            health = await check_once(p.services)
            assert {n: h.state for n, h in health.items()} == {
                "fake_sd": HealthState.READY,
                "fake_qwen": HealthState.READY,
            }
            for model, backend in [("sd-fake", "fake_sd"), ("qwen-fake", "fake_qwen")]:
                result = await p.generate("a lighthouse", model=model, size="64x64", seed=4)
                assert result.job.provider == backend and result.image
                assert result.job.cost_status == "priced"
