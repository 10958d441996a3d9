"""The SQL ledger's reports: totals and usage queries, and entries read back.

``totals().images`` and ``UsageRow.requests`` count distinct jobs with at least one entry (a job
retried three times is one request, three entries); spent sums priced entries only and unpriced
entries are counted in ``unpriced_events``, never folded into $0.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Row, Select, case, distinct, func, select

from pixelpipe.ledger.base import Charge, ImageCostRow
from pixelpipe.ledger.entry import LedgerEntry
from pixelpipe.ledger.policy import NO_KEY
from pixelpipe.ledger.sql.reserve import COUNTED
from pixelpipe.ledger.tables import ledger_entries
from pixelpipe.pricing.price import Price

_E = ledger_entries.c


def totals_query(today: str) -> Select[Any]:
    return select(
        func.coalesce(func.sum(case((_E.day == today, _E.amount_micros))), 0),
        func.coalesce(func.sum(_E.amount_micros), 0),
        func.coalesce(func.sum(_E.saved_micros), 0),
        _count_if(_E.amount_micros.is_(None)),
        func.count(distinct(_E.job_id)),
        _count_if(_E.state == "unconfirmed"),
    ).where(COUNTED)


def usage_query(group_by: str, since: float | None, until: float | None) -> Select[Any]:
    group = _group_column(group_by)
    return (
        select(
            group,
            func.count(distinct(_E.job_id)),
            _count_if(_E.kind == "cache_hit"),
            func.coalesce(func.sum(_E.amount_micros), 0),
            func.coalesce(func.sum(_E.saved_micros), 0),
            _count_if(_E.amount_micros.is_(None)),
        )
        .where(COUNTED, *_window(since, until))
        .group_by(group)
        .order_by(group)
    )


def image_cost_query(since: float | None, until: float | None) -> Select[Any]:
    """What images cost per (provider, model): the sums of :class:`ImageCostRow`, in order."""
    image = _E.detail["state"].as_string() == "succeeded"
    seconds = _E.detail["gpu_seconds"].as_float()
    source = _E.detail["gpu_time_source"].as_string()
    return (
        select(
            _E.provider,
            _E.model,
            _count_if(image),
            _count_if(image & _E.amount_micros.is_(None)),
            func.coalesce(func.sum(case((image, _E.amount_micros))), 0),
            func.coalesce(func.sum(seconds), 0.0),
            _count_if(image & seconds.is_not(None)),
            func.coalesce(func.sum(case((image, seconds))), 0.0),
            _count_if(source == "server"),
            _count_if(source == "wall"),
        )
        .where(COUNTED, _E.kind == "attempt", *_window(since, until))
        .group_by(_E.provider, _E.model)
        .order_by(_E.provider, _E.model)
    )


def image_cost_row(row: Row[Any]) -> ImageCostRow:
    provider, model, images, unpriced, spent, seconds, timed, image_seconds, server, wall = tuple(
        row
    )
    return ImageCostRow(
        provider=str(provider),
        model=str(model),
        images=int(images),
        unpriced_images=int(unpriced),
        spent_micros=int(spent),
        gpu_seconds=float(seconds),
        gpu_images=int(timed),
        image_gpu_seconds=float(image_seconds),
        server_timed=int(server),
        wall_timed=int(wall),
    )


def _group_column(group_by: str) -> ColumnElement[Any]:
    if group_by == "key":
        return func.coalesce(_E.api_key_id, NO_KEY)
    columns: dict[str, ColumnElement[Any]] = {
        "model": _E.model,
        "provider": _E.provider,
        "day": _E.day,
    }
    return columns[group_by]


def _window(since: float | None, until: float | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(_E.created_at >= since)
    if until is not None:
        conditions.append(_E.created_at < until)
    return conditions


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """COUNT(*) FILTER (WHERE ...), spelled portably."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def entry_of(row: Row[Any]) -> LedgerEntry:
    m = row._mapping
    charge = Charge(
        job_id=m["job_id"],
        attempt=m["attempt"],
        provider=m["provider"],
        provider_job_id=m["provider_job_id"],
        model=m["model"],
        kind=m["kind"],
        price=Price(m["amount_micros"], m["price_version"], m["basis"]),
        saved_micros=m["saved_micros"],
        api_key_id=m["api_key_id"],
        detail=dict(m["detail"] or {}),
        state=m["state"],
        outcome=m["outcome"],
    )
    return LedgerEntry(charge, float(m["created_at"]), m["day"])
