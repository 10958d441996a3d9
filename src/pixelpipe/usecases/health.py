"""Readiness: does every configured backend answer (database, storage, queue, events)?"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pixelpipe.services import Services

READY_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str]  # backend -> "ok" or "error: <exception type>"
    backends: dict[str, str]  # backend -> what implements it

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
    return Readiness(dict(zip(probes, results, strict=True)), backends)
