"""The cost-per-image report computed from entries in memory (:class:`MemoryLedger`); the SQL
ledger runs the same sums in one query (:func:`pixelpipe.ledger.sql.reports.image_cost_query`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pixelpipe.ledger.base import ImageCostRow
from pixelpipe.ledger.entry import LedgerEntry


def image_costs(entries: Iterable[LedgerEntry]) -> list[ImageCostRow]:
    """One row per (provider, model) of the attempts in ``entries``, ordered by both."""
    groups: dict[tuple[str, str], list[LedgerEntry]] = {}
    for e in entries:
        if e.charge.kind == "attempt":
            groups.setdefault((e.charge.provider, e.charge.model), []).append(e)
    return [_row(provider, model, rows) for (provider, model), rows in sorted(groups.items())]


def _row(provider: str, model: str, entries: list[LedgerEntry]) -> ImageCostRow:
    images = [e for e in entries if e.charge.detail.get("state") == "succeeded"]
    timed = [s for s in (gpu_seconds(e.charge.detail) for e in images) if s is not None]
    sources = [e.charge.detail.get("gpu_time_source") for e in entries]
    return ImageCostRow(
        provider=provider,
        model=model,
        images=len(images),
        unpriced_images=sum(1 for e in images if e.amount_micros is None),
        spent_micros=sum(e.amount_micros or 0 for e in images),
        gpu_seconds=sum(gpu_seconds(e.charge.detail) or 0.0 for e in entries),
        gpu_images=len(timed),
        image_gpu_seconds=sum(timed),
        server_timed=sources.count("server"),
        wall_timed=sources.count("wall"),
    )


def gpu_seconds(detail: dict[str, Any]) -> float | None:
    """An entry's GPU-seconds (self-hosted backends' attempts), None where it has none."""
    seconds = detail.get("gpu_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return float(seconds)
