"""A budget reservation made inside a SQL write transaction.

:meth:`SqlLedger.reserve` runs it in a transaction of its own; the SQL job store runs it in the
transaction that inserts the job (``JobStore.admit(job, guard=reservation)``), so the budget check,
the reservation and the job commit together or not at all.

No overspend: the check reads what is spent and reserved and inserts the reservation in ONE write
transaction serialised against every other reservation — SQLite's ``BEGIN IMMEDIATE`` (see
:mod:`pixelpipe.db`) takes the database write lock up front; on PostgreSQL the transaction first
takes a transaction-scoped advisory lock on a fixed key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, delete, func, select, text

from pixelpipe.compiled_sql import execute, first_row, insert_row
from pixelpipe.ledger.base import Budget, Reservation
from pixelpipe.ledger.budgets import load_budgets
from pixelpipe.ledger.policy import GLOBAL, KEY_PREFIX, fits, period_days, refuse, scopes_for
from pixelpipe.ledger.tables import budget_reservations, ledger_entries

RESERVE_LOCK_KEY = 0x70697870_6C656467  # "pixpledg": the advisory lock serialising reservations

_E = ledger_entries.c
_R = budget_reservations.c
# built once, values bound at execution (building ``.values(...)`` per call costs ~0.3 ms of CPU)
_DROP_EXPIRED = delete(budget_reservations).where(_R.expires_at <= bindparam("w_now"))
_HAS_RESERVATION = select(_R.job_id).where(_R.job_id == bindparam("w_job"))
COUNTED = _E.state != "pending"  # in flight: its job's reservation still covers it


def make_reservation(conn: Connection, reservation: Reservation, *, new_job: bool = False) -> None:
    """Hold ``reservation`` against every budget that applies, in ``conn``'s transaction; raise
    errors.BudgetExceeded (rolling the transaction back) when it does not fit. Idempotent per
    job: a job holding an active reservation keeps it. ``new_job``: the job's row is inserted in
    this same transaction, so it holds none yet — the two statements that look (and sweep the
    expired ones first: they count for nothing, :func:`reserved_micros` ignores them, and every
    job's ends with the job) are skipped on the admission's path."""
    r = reservation
    _serialise(conn)
    if not new_job:
        execute(conn, _DROP_EXPIRED, budget_reservations, {"w_now": r.created_at})
        found = first_row(conn, _HAS_RESERVATION, budget_reservations, {"w_job": r.job_id})
        if found is not None:
            return
    for budget in (*r.budgets, *load_budgets(conn, scopes_for(r.api_key_id))):
        spent = _spent(conn, budget, r.created_at)
        reserved = reserved_micros(conn, budget.scope, r.created_at)
        if not fits(budget, spent, reserved, r.amount_micros):
            raise refuse(budget, spent, reserved, r.amount_micros)
    insert_row(
        conn,
        budget_reservations,
        {
            "job_id": r.job_id,
            "api_key_id": r.api_key_id,
            "amount_micros": r.amount_micros,
            "created_at": r.created_at,
            "expires_at": r.expires_at,
        },
    )


def reserved_micros(conn: Connection, scope: str, now: float) -> int:
    """Sum of the reservations active at ``now`` counted against ``scope``."""
    query = select(func.coalesce(func.sum(_R.amount_micros), 0)).where(
        _R.expires_at > now, *_key_filter(_R.api_key_id, scope)
    )
    return int(conn.execute(query).scalar_one())


def _serialise(conn: Connection) -> None:
    """Serialise reservations across processes (SQLite: BEGIN IMMEDIATE already holds the lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RESERVE_LOCK_KEY})


def _key_filter(column: Any, scope: str) -> list[ColumnElement[bool]]:
    return [] if scope == GLOBAL else [column == scope[len(KEY_PREFIX) :]]


def _spent(conn: Connection, budget: Budget, now: float) -> int:
    first, last = period_days(budget.period, now)
    query = select(func.coalesce(func.sum(_E.amount_micros), 0)).where(
        _E.day >= first, _E.day <= last, COUNTED, *_key_filter(_E.api_key_id, budget.scope)
    )
    return int(conn.execute(query).scalar_one())
