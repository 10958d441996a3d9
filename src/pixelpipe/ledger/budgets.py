"""Budget management on the database (``pixelpipe budgets`` and the admin API call these).

Budgets set here live in the ``budgets`` table; the global ones from settings
(``PIXELPIPE_BUDGET_DAILY_USD`` / ``..._MONTHLY_USD``) apply as well (see :mod:`.policy`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, select

from pixelpipe.db import Database
from pixelpipe.ledger.policy import Budget, check_budget, settings_budgets
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


def load_budgets(conn: Connection, scopes: Iterable[str] | None = None) -> list[Budget]:
    """The table's budgets (of ``scopes`` only, when given), global first."""
    query = select(budgets.c.scope, budgets.c.period, budgets.c.limit_micros)
    if scopes is not None:
        query = query.where(budgets.c.scope.in_(list(scopes)))
    rows = conn.execute(query).all()
    found = [_budget(r.scope, r.period, int(r.limit_micros)) for r in rows]
    return sorted(found, key=lambda b: (b.scope != "global", b.scope, b.period))


def _is(scope: str, period: str) -> ColumnElement[bool]:
    return and_(budgets.c.scope == scope, budgets.c.period == period)


def _budget(scope: str, period: str, limit_micros: int) -> Budget:
    return Budget(scope, check_budget(scope, period, limit_micros), limit_micros)
