"""Runs on a self-hosted backend are priced in GPU time: estimated from the model's typical
latency, then from its measured runs; billed at the backend's GPU-seconds (or the wall time when
the backend gives none), with the source on the ledger entry; unpriced without a rate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.pipeline import Pipeline
from pixelpipe.settings import load_settings

pytestmark = pytest.mark.usefixtures("gpukind")

MODEL = """
[models.{name}]
label = "{name}"
formats = ["png"]
aspect_ratios = {{ "1:1" = [64, 64] }}
typical_latency_s = 3.0
backends = ["{backend}"]
"""

FILE = (
    """\
[backends.gpu_a]
kind = "gpukind"
url = "http://10.1.2.3:5000"
usd_per_gpu_hour = 3.6
options = { gpu_seconds = 2.0, source = "server" }

[backends.gpu_w]
kind = "gpukind"
url = "http://10.1.2.4:5000"
usd_per_gpu_hour = 3.6

[backends.gpu_free]
kind = "gpukind"
url = "http://10.1.2.5:5000"
"""
    + MODEL.format(name="house", backend="gpu_a")
    + MODEL.format(name="walled", backend="gpu_w")
    + MODEL.format(name="unpriced", backend="gpu_free")
)


async def test_gpu_time_is_estimated_then_billed(
    tmp_path: Path, catalog_file: Callable[[str], Path]
) -> None:
    settings = load_settings(data_dir=tmp_path / "data", catalog_path=catalog_file(FILE))
    async with Pipeline(settings) as p:
        before = await p.estimate("a fox", model="house")
        assert before.provider == "gpu_a"
        assert before.price.amount_micros == 3000  # 3.0 s typical × $3.6/h
        assert before.price.basis == "gpu_time"

        result = await p.generate("a fox", model="house", seed=1)
        assert result.job.cost_micros == 2000  # 2.0 s (the server's measure) × $3.6/h
        ledger = p.services.ledger
        assert isinstance(ledger, SqlLedger)
        (entry,) = await ledger.entries(result.job.id)
        assert entry.charge.price.amount_micros == 2000
        assert entry.charge.price.basis == "gpu_time"
        assert entry.charge.detail["gpu_seconds"] == 2.0
        assert entry.charge.detail["gpu_time_source"] == "server"
        assert entry.charge.detail["usd_per_gpu_hour"] == "3.6"

        after = await p.estimate("another fox", model="house")
        assert after.price.amount_micros == 2000  # the measured history now

        walled = await p.generate("a fox", model="walled", seed=1)
        (entry,) = await ledger.entries(walled.job.id)
        assert entry.charge.detail["gpu_time_source"] == "wall"
        seconds = entry.charge.detail["gpu_seconds"]
        assert 0 <= seconds < 30
        assert entry.charge.price.amount_micros == round(seconds * 1000)

        unpriced = await p.generate("a fox", model="unpriced", seed=1)
        (entry,) = await ledger.entries(unpriced.job.id)
        assert entry.charge.price.amount_micros is None
        assert unpriced.job.cost_micros is None
        assert (await p.estimate("a fox", model="unpriced")).price.amount_micros is None

    async with Pipeline(settings) as again:  # a new process: the history comes from the ledger
        assert (await again.estimate("a third fox", model="house")).price.amount_micros == 2000
