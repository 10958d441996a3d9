"""The GPU-seconds of past succeeded runs on self-hosted backends, from their ledger entries:
what a new process seeds its GPU-time estimates with (:class:`pixelpipe.pricing.GpuHistory`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select

from pixelpipe.db import Database
from pixelpipe.ledger.tables import ledger_entries

_E = ledger_entries.c


async def recent_gpu_runs(
    db: Database, providers: Collection[str], limit: int
) -> list[tuple[str, str, float]]:
    """(provider, model, gpu_seconds) of the last ``limit`` billed GPU-time attempts of
    ``providers`` that succeeded, oldest first."""
    query = (
        select(_E.provider, _E.model, _E.detail)
        .where(
            _E.provider.in_(list(providers)),
            _E.kind == "attempt",
            _E.basis == "gpu_time",
            _E.state == "billed",
        )
        .order_by(_E.id.desc())
        .limit(limit)
    )
    rows = await db.read_sync(lambda conn: conn.execute(query).all())
    runs = []
    for provider, model, detail in reversed(rows):
        seconds = _seconds(detail)
        if seconds is not None:
            runs.append((str(provider), str(model), seconds))
    return runs


def _seconds(detail: Any) -> float | None:
    if not isinstance(detail, dict) or detail.get("state") != "succeeded":
        return None
    seconds = detail.get("gpu_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return None
    return float(seconds)
