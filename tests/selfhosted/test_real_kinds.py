"""A catalog file with a backend of a real kind (openai_compatible, against its SGLang fake over
real sockets): the generation runs on it through the whole pipeline, its key read from the
variable the file names, its GPU time (SGLang's own measure) priced in the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelpipe.fakes.openai_compatible import FakeOpenAICompatible, OpenAICompatibleBehaviour
from pixelpipe.fakes.server import serve_app
from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.pipeline import Pipeline
from pixelpipe.settings import load_settings

FILE = """\
[backends.gpu1]
kind = "openai_compatible"
url = "{url}"
api_key_env = "PIXELPIPE_TEST_GPU1_KEY"
usd_per_gpu_hour = 3.6

[models.qwen-image]
label = "Qwen-Image (ours)"
formats = ["png"]
aspect_ratios = {{ "1:1" = [512, 512] }}
typical_latency_s = 2.0
backends = ["gpu1"]

[models.qwen-image.ids]
gpu1 = "Qwen/Qwen-Image"
"""


async def test_a_generation_on_an_openai_compatible_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIXELPIPE_TEST_GPU1_KEY", "sk-local-0123456789")
    fake = FakeOpenAICompatible(
        model="Qwen/Qwen-Image",
        flavour="sglang",
        api_key="sk-local-0123456789",
        behaviour=OpenAICompatibleBehaviour(latency_s=0.05),
    )
    async with serve_app(fake.app) as url:
        path = tmp_path / "catalog.toml"
        path.write_text(FILE.format(url=url))
        settings = load_settings(data_dir=tmp_path / "data", catalog_path=path)
        async with Pipeline(settings) as p:
            result = await p.generate("a fox", model="qwen-image", seed=3)
            assert result.job.provider == "gpu1" and result.image
            ledger = p.services.ledger
            assert isinstance(ledger, SqlLedger)
            (entry,) = await ledger.entries(result.job.id)
            counted = p.services.metrics.backend_gpu_seconds.labels("gpu1")._value.get()
    assert entry.charge.provider == "gpu1" and entry.charge.price.basis == "gpu_time"
    assert entry.charge.detail["gpu_time_source"] == "server"
    seconds = entry.charge.detail["gpu_seconds"]
    assert seconds > 0 and entry.charge.price.amount_micros == round(seconds * 1000)
    assert counted == pytest.approx(seconds)  # /metrics: pixelpipe_backend_gpu_seconds_total
