"""``pixelpipe fake-providers`` serves the self-hosted kinds' fakes too: the catalog file it
offers (``catalog_example``, also in ``GET BASE/``) passes the start-up checks from any directory
(its workflow model names the packaged copy of the example SDXL workflow by its absolute path),
runs a generation on each backend, and the health checker finds them all up."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import httpx
from PIL import Image

from pixelpipe.backend_health import check_once
from pixelpipe.fakes.server import (
    EXAMPLE_WORKFLOW,
    FakeProviders,
    catalog_example,
    serve_app,
)
from pixelpipe.pipeline import Pipeline
from pixelpipe.providers.base import HealthState
from pixelpipe.settings import load_settings


async def test_the_catalog_example_runs_on_the_mounted_fakes(tmp_path: Path) -> None:
    fakes = FakeProviders(latency_s=0.05)
    async with serve_app(fakes.app) as base:
        async with httpx.AsyncClient() as c:
            index = (await c.get(base + "/")).json()
        assert {"a1111", "openai_compatible", "comfyui"} <= set(index["fakes"])
        assert index["catalog_example"] == catalog_example(base)
        path = tmp_path / "catalog.toml"
        path.write_text(catalog_example(base))
        settings = load_settings(data_dir=tmp_path / "data", catalog_path=path)
        async with Pipeline(settings) as p:
            health = await check_once(p.services)
            assert {n: h.state for n, h in health.items()} == {
                "fake_sd": HealthState.READY,
                "fake_qwen": HealthState.READY,
                "fake_comfy": HealthState.READY,
            }
            for model, backend in [("sd-fake", "fake_sd"), ("qwen-fake", "fake_qwen")]:
                result = await p.generate("a lighthouse", model=model, size="64x64", seed=4)
                assert result.job.provider == backend and result.image
                assert result.job.cost_status == "priced"
            result = await p.generate("a lighthouse", model="sdxl-comfy-fake", seed=4)
            assert result.job.provider == "fake_comfy" and result.job.cost_status == "priced"
            assert Image.open(io.BytesIO(result.image)).size == (1024, 1024)
        # the workflow ComfyUI ran: the example's, the request's prompt and seed filled in
        async with httpx.AsyncClient() as c:
            history = (await c.get(base + "/comfyui/history")).json()
        (prompt,) = [entry["prompt"][2] for entry in history.values()]
        assert prompt["6"]["inputs"]["text"] == "a lighthouse"
        assert prompt["3"]["inputs"]["seed"] == 4
        assert prompt["4"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"


def test_the_packaged_workflow_is_the_example() -> None:
    """The catalog example's workflow is a byte-for-byte copy of the one in examples/comfyui."""
    example = Path(__file__).resolve().parents[2] / "examples" / "comfyui" / "sdxl_txt2img.json"
    assert EXAMPLE_WORKFLOW.read_bytes() == example.read_bytes()
    assert json.dumps(str(EXAMPLE_WORKFLOW)) in catalog_example("http://127.0.0.1:9100")


def test_the_docs_show_the_catalog_example() -> None:
    """docs/self-hosted.md shows what ``GET BASE/`` offers, the workflow's path aside (its own is
    the reader's machine's)."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "self-hosted.md").read_text()
    section = docs[docs.index("## Trying it offline") :]
    shown = section[section.index("```toml\n") + 8 : section.index("```\n", 8)]
    ours = json.dumps(str(EXAMPLE_WORKFLOW))
    shown = re.sub(r'^workflow = "[^"]*"', f"workflow = {ours}", shown, flags=re.M)
    assert shown == catalog_example("http://127.0.0.1:9100")
