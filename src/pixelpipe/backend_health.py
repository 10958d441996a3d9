"""The self-hosted backends' health checker (engine): every few seconds, ask each backend whose
kind can tell (:class:`~pixelpipe.providers.base.ReportsHealth`) whether it is up.

A backend that is down (unreachable, or broken by its own account: cog's ``SETUP_FAILED``,
``DEFUNCT``, ``UNHEALTHY``) or still starting is marked out in the provider gate for a little
longer than the interval, so new jobs fail over to the model's next provider; the next check
retries it, and once it answers again the mark runs out and it takes work again. The last check
of each backend is kept on the gate (``gate.health``) for ``/readyz``, ``/v1/models`` and the
page, and set in ``/metrics``. Hosted providers are never checked.
"""

from __future__ import annotations

import asyncio
import logging

from pixelpipe.providers.base import BackendHealth, HealthState, ReportsHealth
from pixelpipe.services import Services

log = logging.getLogger(__name__)

INTERVAL_S = 5.0  # between two rounds of checks
CHECK_TIMEOUT_S = 4.0  # one backend's check; slower counts as down
DOWN_MARGIN_S = 2.0  # the outage mark outlives the next round by this much


def checked_backends(svc: Services) -> dict[str, ReportsHealth]:
    """The providers whose kind reports health (the self-hosted backends), by name."""
    return {n: p for n, p in svc.providers.items() if isinstance(p, ReportsHealth)}


async def check_once(
    svc: Services, *, down_for_s: float = INTERVAL_S + DOWN_MARGIN_S
) -> dict[str, BackendHealth]:
    """One round: every backend checked at once; the gate and the metrics updated. A backend
    that takes no work is marked out for ``down_for_s`` (past the next round)."""
    backends = checked_backends(svc)
    found = await asyncio.gather(*(_check(p) for p in backends.values()))
    results = dict(zip(backends, found, strict=True))
    for name, health in results.items():
        before = svc.gate.state_of(name)
        svc.gate.record_health(name, health, down_for_s)
        _observe(svc, name, health)
        if before is not None and before != health.state:
            log.warning("backend %s is %s (was %s) %s", name, health.state, before, health.detail)
    await _observe_slots(svc)
    return results


async def run_health_checks(svc: Services, *, interval_s: float = INTERVAL_S) -> None:
    """Check every ``interval_s`` until cancelled (nothing to do without a self-hosted backend)."""
    if not checked_backends(svc):
        return
    while True:
        try:
            await check_once(svc, down_for_s=interval_s + DOWN_MARGIN_S)
        except Exception:  # a bug here must not stop the worker; the next round tries again
            log.exception("backend health round failed")
        await asyncio.sleep(interval_s)


async def _check(provider: ReportsHealth) -> BackendHealth:
    try:
        return await asyncio.wait_for(provider.backend_health(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return BackendHealth(HealthState.DOWN, f"no answer in {CHECK_TIMEOUT_S:g} s")


def _observe(svc: Services, name: str, health: BackendHealth) -> None:
    svc.metrics.set_backend_state(name, str(health.state))
    if health.busy_slots is not None:
        svc.metrics.backend_busy.labels(name).set(health.busy_slots)
    if health.queued is not None:
        svc.metrics.backend_queue.labels(name).set(health.queued)


async def _observe_slots(svc: Services) -> None:
    """Busy slots and line length of each backend as the jobs show them (every process sharing
    the database counted): they replace what a kind could tell from this process alone."""
    for name, use in (await svc.store.slot_use(svc.slots)).items():
        svc.metrics.backend_busy.labels(name).set(use.busy)
        svc.metrics.backend_queue.labels(name).set(use.waiting)
