"""Readiness: does every configured backend answer (database, storage, queue, events)?

The self-hosted GPU servers of the operator's catalog are listed too, with their last health
check (:mod:`pixelpipe.backend_health`), but never make this process unready: a GPU server that
is down means its jobs fail over to the model's next provider (or wait), not that this process
cannot serve — a load balancer must not take every pixelpipe out because one GPU box restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pixelpipe.backend_health import checked_backends
from pixelpipe.providers.base import HealthState
from pixelpipe.services import Services

READY_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str]  # backend -> "ok" or "error: <exception type>"
    backends: dict[str, str]  # backend -> what implements it
    # self-hosted GPU servers -> {"state": ready|busy|starting|down|unknown, "detail": …};
    # informative only: not part of ``ok``
    gpu_backends: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v == "ok" for v in self.checks.values())


async def readiness(svc: Services, *, timeout_s: float = READY_TIMEOUT_S) -> Readiness:
    probes: dict[str, Callable[[], Awaitable[object]]] = {
        "database": svc.store.ping,
        "storage": svc.storage.check,
        "queue": svc.queue.ping,
        "events": svc.notifier.ping,
    }

    async def check(probe: Callable[[], Awaitable[object]]) -> str:
        try:
            await asyncio.wait_for(probe(), timeout_s)
        except Exception as exc:
            return f"error: {type(exc).__name__}"
        return "ok"

    results = await asyncio.gather(*(check(p) for p in probes.values()))
    backends = {
        "database": svc.db.dialect,
        "storage": type(svc.storage).__name__,
        "queue": type(svc.queue).__name__,
        "events": type(svc.notifier).__name__,
    }
    checks = dict(zip(probes, results, strict=True))
    return Readiness(checks, backends, gpu_backends(svc))


def gpu_backends(svc: Services) -> dict[str, dict[str, str]]:
    """Each self-hosted backend's last health check (``unknown`` before the first)."""
    states = {}
    for name in sorted(checked_backends(svc)):
        health = svc.gate.health.get(name)
        state = HealthState.UNKNOWN if health is None else health.state
        states[name] = {"state": str(state), "detail": health.detail if health else ""}
    return states
