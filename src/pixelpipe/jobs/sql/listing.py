"""The gallery's filters and sort orders as SQL (:mod:`pixelpipe.jobs.listing`)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, String, and_, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from pixelpipe.jobs.listing import NO_COST, JobFilter
from pixelpipe.jobs.tables import jobs

_cost = func.coalesce(jobs.c.cost_micros, NO_COST)
_ORDERS = {
    "newest": (jobs.c.id.desc(),),
    "oldest": (jobs.c.id.asc(),),
    "cost_desc": (_cost.desc(), jobs.c.id.desc()),
    "cost_asc": (_cost.asc(), jobs.c.id.asc()),
}


_INLINE = 1000  # ids bound one by one up to this many; more go as one JSON document


def _among(ids: frozenset[str], dialect: str) -> ColumnElement[bool]:
    """``jobs.id`` in ``ids``: a board or the favourites may hold more ids than a statement may
    bind parameters (SQLite 32,766, PostgreSQL 65,535), so a large set is one JSON array."""
    if len(ids) <= _INLINE:
        return jobs.c.id.in_(sorted(ids))
    doc = orjson.dumps(sorted(ids)).decode()
    if dialect == "sqlite":
        each = func.json_each(literal(doc, String)).table_valued("value")
    else:
        each = func.jsonb_array_elements_text(cast(literal(doc, String), JSONB)).table_valued(
            "value"
        )
    return jobs.c.id.in_(select(each.c.value))


def filtered(stmt: Select[Any], where: JobFilter, dialect: str = "sqlite") -> Select[Any]:
    """``stmt`` with the filters of ``where``, its order, and its cursor."""
    c = jobs.c
    conditions = []
    if where.provider is not None:
        conditions.append(c.provider == where.provider)
    if where.created_from is not None:
        conditions.append(c.created_at >= where.created_from)
    if where.created_to is not None:
        conditions.append(c.created_at < where.created_to)
    if where.cost_min is not None:
        conditions.append(c.cost_micros >= where.cost_min)
    if where.cost_max is not None:
        conditions.append(c.cost_micros <= where.cost_max)
    if where.ids is not None:
        conditions.append(_among(where.ids, dialect))
    if where.after is not None:
        conditions.append(_past(where))
    return stmt.where(*conditions).order_by(*_ORDERS[where.sort])


def _past(where: JobFilter) -> Any:
    assert where.after is not None
    cost, last_id = where.after
    if where.sort == "oldest":
        return jobs.c.id > last_id
    if where.sort == "newest":
        return jobs.c.id < last_id
    if where.sort == "cost_asc":
        return or_(_cost > cost, and_(_cost == cost, jobs.c.id > last_id))
    return or_(_cost < cost, and_(_cost == cost, jobs.c.id < last_id))
