"""Budget management on the database (``pixelpipe budgets`` and the admin API call these).

Budgets set here live in the ``budgets`` table; the global ones from settings
(``PIXELPIPE_BUDGET_DAILY_USD`` / ``..._MONTHLY_USD``) apply as well (see :mod:`.policy`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, delete, insert, select

from pixelpipe.compiled_sql import all_rows
from pixelpipe.db import Database
from pixelpipe.ledger.base import Budget
from pixelpipe.ledger.policy import check_budget, settings_budgets
from pixelpipe.ledger.tables import budgets
from pixelpipe.settings import Settings


async def set_budget(db: Database, scope: str, period: str, limit_micros: int) -> None:
    """Create or replace the budget of ``scope`` for ``period`` ("day" or "month")."""
    check_budget(scope, period, limit_micros)
    async with db.begin() as conn:
        await conn.execute(delete(budgets).where(_is(scope, period)))
        await conn.execute(
            insert(budgets).values(
                scope=scope, period=period, limit_micros=limit_micros, updated_at=time.time()
            )
        )


async def delete_budget(db: Database, scope: str, period: str) -> bool:
    """Remove a budget; False when there was none."""
    async with db.begin() as conn:
        result = await conn.execute(delete(budgets).where(_is(scope, period)))
    return bool(result.rowcount)


async def list_budgets(db: Database, settings: Settings | None = None) -> list[Budget]:
    """Every budget: the settings' global ones first (when ``settings`` given), then the table's."""
    stored = await db.read_sync(load_budgets)
    return [*settings_budgets(settings), *stored]


_ALL_BUDGETS = select(budgets.c.scope, budgets.c.period, budgets.c.limit_micros)


@functools.lru_cache(maxsize=8)
def _budgets_of(n_scopes: int) -> Select[Any]:
    """The budgets of ``n_scopes`` scopes, built once (this runs in every reservation)."""
    wanted: list[Any] = [bindparam(f"w_scope{i}") for i in range(n_scopes)]
    return _ALL_BUDGETS.where(budgets.c.scope.in_(wanted))


def load_budgets(conn: Connection, scopes: Iterable[str] | None = None) -> list[Budget]:
    """The table's budgets (of ``scopes`` only, when given), global first."""
    if scopes is None:
        rows = all_rows(conn, _ALL_BUDGETS, budgets, {})
    else:
        wanted = list(scopes)
        params = {f"w_scope{i}": scope for i, scope in enumerate(wanted)}
        rows = all_rows(conn, _budgets_of(len(wanted)), budgets, params)
    found = [_budget(r["scope"], r["period"], int(r["limit_micros"])) for r in rows]
    return sorted(found, key=lambda b: (b.scope != "global", b.scope, b.period))


def _is(scope: str, period: str) -> ColumnElement[bool]:
    return and_(budgets.c.scope == scope, budgets.c.period == period)


def _budget(scope: str, period: str, limit_micros: int) -> Budget:
    return Budget(scope, check_budget(scope, period, limit_micros), limit_micros)
