"""Per-provider pause after a 429 (``Retry-After``) and provider choice with failover.

The gate answers from memory (``available`` is called on every submit and must not wait on the
network). What it learns — a pause from ``Retry-After``, an outage after repeated 5xx — it shares
through a pluggable :class:`GateBackend`: none when embedded (one process), Redis when scaled out
(``events/redis_gate.py``: a key with a TTL per pause plus a pub/sub message, so every process
stops sending to a provider that said "slow down", and a process that starts later loads the
pauses still in force).
"""

from __future__ import annotations

import time
from typing import Protocol

from pixelpipe.catalog import ModelSpec
from pixelpipe.providers.base import BackendHealth

PAUSE = "pause"
OUTAGE = "outage"


class GateBackend(Protocol):
    """Shares pauses between processes. ``share`` must not block: it is called from sync code."""

    async def start(self, gate: ProviderGate, providers: list[str]) -> None: ...

    def share(self, kind: str, provider: str, until: float) -> None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class ProviderGate:
    def __init__(self, backend: GateBackend | None = None) -> None:
        self._paused_until: dict[str, float] = {}
        self._failures: dict[str, float] = {}
        self.backend = backend
        self.order: tuple[str, ...] = ()  # PIXELPIPE_PROVIDER_ORDER; empty = catalog order
        # self-hosted backends' last health check (the engine's checker): provider -> state
        self.health: dict[str, BackendHealth] = {}

    async def start(self, providers: list[str]) -> None:
        if self.backend is not None:
            await self.backend.start(self, providers)

    async def aclose(self) -> None:
        if self.backend is not None:
            await self.backend.aclose()

    def pause(self, provider: str, seconds: float) -> None:
        until = time.time() + max(0.0, seconds)
        self.apply(PAUSE, provider, until)
        if self.backend is not None:
            self.backend.share(PAUSE, provider, until)

    def mark_outage(self, provider: str, seconds: float = 30.0) -> None:
        until = time.time() + seconds
        self._failures[provider] = until
        if self.backend is not None:
            self.backend.share(OUTAGE, provider, until)

    def record_health(self, provider: str, health: BackendHealth, down_for_s: float) -> None:
        """A backend's health check: kept for readiness, the model list and metrics; one that
        takes no work is marked out for ``down_for_s`` (new jobs fail over; the next check after
        that retries it, and each failed check extends the mark)."""
        self.health[provider] = health
        if not health.state.takes_work:
            self.mark_outage(provider, down_for_s)

    def state_of(self, provider: str) -> str | None:
        """A self-hosted backend's health state (None: a hosted provider, never checked)."""
        found = self.health.get(provider)
        return None if found is None else str(found.state)

    def apply(self, kind: str, provider: str, until: float) -> None:
        """Take in a pause or outage (local, or learnt from another process)."""
        target = self._paused_until if kind == PAUSE else self._failures
        target[provider] = max(until, target.get(provider, 0.0))

    def available(self, provider: str) -> bool:
        now = time.time()
        return (
            self._paused_until.get(provider, 0.0) <= now
            and self._failures.get(provider, 0.0) <= now
        )

    def paused_for(self, provider: str) -> float:
        return max(0.0, self._paused_until.get(provider, 0.0) - time.time())

    def ranked(self, spec: ModelSpec) -> list[str]:
        """The model's providers in failover order: the configured order, then catalog order
        (cheapest first, then fastest) for any provider the configured order does not name."""
        rank = {name: i for i, name in enumerate(self.order)}
        return sorted(spec.providers, key=lambda p: rank.get(p, len(rank)))

    def choose(self, spec: ModelSpec, *, preferred: str | None, exclude: str | None = None) -> str:
        """The preferred provider, else the first available in failover order, else the first."""
        if preferred:
            return preferred
        ranked = self.ranked(spec)
        order = [p for p in ranked if p != exclude] or ranked
        for name in order:
            if self.available(name):
                return name
        return order[0]
