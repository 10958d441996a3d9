"""GPU-time prices: a self-hosted backend's run costs its GPU-seconds at the backend's $/GPU-hour.

``usd = gpu_seconds × usd_per_gpu_hour / 3600``, rounded once to integer micro-dollars, half-up
(:func:`~pixelpipe.pricing.rules.to_micros`). The seconds are the backend's own measure where it
gives one (``gpu_time_source = "server"``, e.g. cog's ``metrics.predict_time``), else the run's
wall time as pixelpipe saw it (``"wall"``). A backend without a price is *unpriced*, never $0.

Before a run, its cost is estimated from the model's measured history on that backend (the mean
GPU-seconds of its last :data:`HISTORY` succeeded runs, learnt as they are billed and seeded
from the ledger at start), else from the model's ``typical_latency_s``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pixelpipe.catalog import Catalog
from pixelpipe.pricing.rules import to_micros

BASIS = "gpu_time"
HISTORY = 20  # succeeded runs per (backend, model) the estimate averages
SECONDS_PER_HOUR = Decimal(3600)


def gpu_micros(seconds: float, usd_per_gpu_hour: Decimal) -> int:
    """What ``seconds`` of GPU time cost at ``usd_per_gpu_hour``, in micro-dollars (half-up)."""
    return to_micros(Decimal(repr(max(0.0, seconds))) * usd_per_gpu_hour / SECONDS_PER_HOUR)


class GpuHistory:
    """The GPU-seconds of the last :data:`HISTORY` succeeded runs per (backend, model)."""

    def __init__(self, size: int = HISTORY) -> None:
        self._size = size
        self._runs: dict[tuple[str, str], deque[float]] = {}

    def add(self, backend: str, model: str, seconds: float) -> None:
        runs = self._runs.setdefault((backend, model), deque(maxlen=self._size))
        runs.append(seconds)

    def seed(self, runs: Iterable[tuple[str, str, float]]) -> None:
        """Take in past runs (backend, model, seconds), oldest first."""
        for backend, model, seconds in runs:
            self.add(backend, model, seconds)

    def mean(self, backend: str, model: str) -> float | None:
        runs = self._runs.get((backend, model))
        return sum(runs) / len(runs) if runs else None


@dataclass(frozen=True, slots=True)
class GpuPricing:
    """The self-hosted backends' rates (None: unpriced), which models each serves, and the
    models' typical latencies (the estimate without history)."""

    rates: Mapping[str, Decimal | None]
    serves: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model -> backends
    typical_s: Mapping[str, float] = field(default_factory=dict)  # model -> seconds
    history: GpuHistory = field(default_factory=GpuHistory)

    def priced_in_gpu_time(self, provider: str) -> bool:
        return provider in self.rates

    def estimate_seconds(self, provider: str, model: str) -> float:
        measured = self.history.mean(provider, model)
        return measured if measured is not None else self.typical_s.get(model, 0.0)

    def micros(self, provider: str, seconds: float) -> int | None:
        rate = self.rates.get(provider)
        return None if rate is None else gpu_micros(seconds, rate)


def usage_seconds(usage: Mapping[str, Any]) -> float | None:
    """The GPU-seconds a finished run's usage carries (see worker/billing.py), if any."""
    seconds = usage.get("gpu_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return None
    return float(seconds)


def gpu_pricing(rates: Mapping[str, Decimal | None], catalog: Catalog) -> GpuPricing | None:
    """The GPU-time pricing of the backends ``rates`` names (None without any backend)."""
    if not rates:
        return None
    serves = {
        name: tuple(p for p in spec.providers if p in rates)
        for name, spec in catalog.models.items()
    }
    typical = {name: spec.typical_latency_s for name, spec in catalog.models.items()}
    return GpuPricing(dict(rates), {m: b for m, b in serves.items() if b}, typical)
