"""GPU-time prices: seconds × $/GPU-hour / 3600 in integer micro-dollars, rounded half-up once;
estimates from the measured history, else the typical latency; unpriced without a rate."""

from __future__ import annotations

from decimal import Decimal

from pixelpipe.catalog import load_catalog
from pixelpipe.intake import CanonicalRequest
from pixelpipe.pricing import GpuHistory, GpuPricing, gpu_micros, load_price_table
from pixelpipe.pricing.gpu_time import gpu_pricing

REQ = CanonicalRequest("flux-schnell", "a fox", 1, 1024, 1024, "webp")


def test_gpu_micros_round_half_up_once() -> None:
    assert gpu_micros(1.0, Decimal("3.6")) == 1000
    assert gpu_micros(0.7, Decimal("2.5")) == 486  # 486.111… → 486
    assert gpu_micros(0.0018, Decimal("1")) == 1  # 0.5 micros → 1 (half-up)
    assert gpu_micros(0.0017, Decimal("1")) == 0
    assert gpu_micros(-3.0, Decimal("1")) == 0  # a clock that went back costs nothing
    assert gpu_micros(3600.0, Decimal("0")) == 0


def test_history_is_the_mean_of_the_last_runs() -> None:
    history = GpuHistory(size=3)
    assert history.mean("gpu_a", "m") is None
    history.seed([("gpu_a", "m", 1.0), ("gpu_a", "m", 2.0)])
    history.add("gpu_a", "m", 3.0)
    history.add("gpu_a", "m", 7.0)  # the first run leaves the window
    assert history.mean("gpu_a", "m") == 4.0
    assert history.mean("gpu_b", "m") is None


def test_the_table_prices_backends_in_gpu_time() -> None:
    catalog = load_catalog()
    gpu = gpu_pricing({"gpu_a": Decimal("3.6"), "gpu_free": None}, catalog)
    assert gpu is not None and gpu.typical_s["flux-schnell"] == 1.0
    table = load_price_table().with_gpu(gpu)
    price = table.estimate(REQ, "gpu_a")
    assert (price.amount_micros, price.basis, price.version) == (1000, "gpu_time", "2026-01")
    gpu.history.add("gpu_a", "flux-schnell", 0.5)
    assert table.estimate(REQ, "gpu_a").amount_micros == 500
    assert table.actual(REQ, "gpu_a", {"gpu_seconds": 2.0}).amount_micros == 2000
    assert table.actual(REQ, "gpu_a", {}).amount_micros == 500  # no seconds: the estimate
    assert table.estimate(REQ, "gpu_free").amount_micros is None  # unpriced, never $0
    # hosted providers are priced as before
    assert table.estimate(REQ, "replicate") == load_price_table().estimate(REQ, "replicate")


def test_the_model_list_shows_a_backend_beside_the_hosted_prices() -> None:
    gpu = GpuPricing({"gpu_a": Decimal("3.6")}, {"flux-schnell": ("gpu_a",)}, {"flux-schnell": 2})
    table = load_price_table().with_gpu(gpu)
    shown = table.display("flux-schnell")
    assert shown["gpu_a"] == 2000
    assert shown["replicate"] == load_price_table().display("flux-schnell")["replicate"]
    assert table.display("flux-schnell", ["gpu_a"]) == {"gpu_a": 2000}


def test_without_backends_nothing_changes() -> None:
    assert gpu_pricing({}, load_catalog()) is None
    assert load_price_table().gpu is None
