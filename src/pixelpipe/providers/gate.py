"""Per-provider pause after a 429 (``Retry-After``) and provider choice with failover.

Embedded mode keeps pauses in memory; scale-out shares them through Redis (issue 6 wires that).
"""

from __future__ import annotations

import time

from pixelpipe.catalog import ModelSpec


class ProviderGate:
    def __init__(self) -> None:
        self._paused_until: dict[str, float] = {}
        self._failures: dict[str, float] = {}

    def pause(self, provider: str, seconds: float) -> None:
        until = time.time() + max(0.0, seconds)
        self._paused_until[provider] = max(until, self._paused_until.get(provider, 0.0))

    def mark_outage(self, provider: str, seconds: float = 30.0) -> None:
        self._failures[provider] = time.time() + seconds

    def available(self, provider: str) -> bool:
        now = time.time()
        return (
            self._paused_until.get(provider, 0.0) <= now
            and self._failures.get(provider, 0.0) <= now
        )

    def paused_for(self, provider: str) -> float:
        return max(0.0, self._paused_until.get(provider, 0.0) - time.time())

    def choose(self, spec: ModelSpec, *, preferred: str | None, exclude: str | None = None) -> str:
        """The preferred provider, else the first available in catalog order, else the first."""
        if preferred:
            return preferred
        order = [p for p in spec.providers if p != exclude] or list(spec.providers)
        for name in order:
            if self.available(name):
                return name
        return order[0]
