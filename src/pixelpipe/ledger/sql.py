"""SqlLedger: the ledger and budgets on SQLite (embedded) or PostgreSQL (scale-out).

Exactly once: ``record`` inserts with ON CONFLICT DO NOTHING on the unique
(job_id, attempt, provider_job_id, kind), so a duplicate webhook, a retry or a restart after a crash
finds the row already there and adds nothing. A provider attempt is in the ledger before its request
is sent (``open_attempt``: a ``pending`` row with no run id, at the estimate); its charge completes
that row (one guarded UPDATE), so the attempt stays one row. Pending rows are not counted as spent
(the job's reservation covers them); unconfirmed ones are.

No overspend: ``reserve`` reads what is spent and reserved and inserts its reservation in ONE write
transaction that is serialised against every other ``reserve`` — SQLite's ``BEGIN IMMEDIATE`` (see
:mod:`pixelpipe.db`) takes the database write lock up front; on PostgreSQL the transaction first
takes a transaction-scoped advisory lock on a fixed key. Reservations expire (job deadline plus a
margin), so a crash between reserving and creating the job cannot hold budget forever.

Reports: ``totals().images`` and ``UsageRow.requests`` count distinct jobs with at least one entry
(a job retried three times is one request, three entries); spent sums priced entries only and
unpriced entries are counted in ``unpriced_events``, never folded into $0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    bindparam,
    case,
    delete,
    distinct,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from pixelpipe.compiled_sql import execute, first_row, insert_row
from pixelpipe.db import Database
from pixelpipe.ledger.base import OPEN_RUN, Charge, CostTotals, Price, UsageRow
from pixelpipe.ledger.budgets import load_budgets
from pixelpipe.ledger.entry import LedgerEntry, check_group_by
from pixelpipe.ledger.policy import (
    GLOBAL,
    KEY_PREFIX,
    NO_KEY,
    Budget,
    fits,
    period_days,
    refuse,
    reservation_ttl,
    scopes_for,
    settings_budgets,
    utc_day,
)
from pixelpipe.ledger.tables import budget_reservations, ledger_entries
from pixelpipe.pricing.table import PriceTable
from pixelpipe.settings import Settings

RESERVE_LOCK_KEY = 0x70697870_6C656467  # "pixpledg": the advisory lock serialising reserve()

_E = ledger_entries.c
_R = budget_reservations.c
# built once, values bound at execution (building ``.values(...)`` per call costs ~0.3 ms of CPU)
_DROP_EXPIRED = delete(budget_reservations).where(_R.expires_at <= bindparam("w_now"))
_DROP_RESERVATION = delete(budget_reservations).where(_R.job_id == bindparam("w_job"))
_HAS_RESERVATION = select(_R.job_id).where(_R.job_id == bindparam("w_job"))
_INSERT_RESERVATION = insert(budget_reservations)
# every value is a named bind (compiled_sql runs these on the driver's cursor): see _open_row()
_OPEN_ROW = (
    (_E.job_id == bindparam("w_job"))
    & (_E.attempt == bindparam("w_attempt"))
    & (_E.kind == bindparam("w_kind"))
    & (_E.provider_job_id == bindparam("w_open"))
)
# an attempt's charge completes its open row (pending, or unconfirmed after a crash)
_COMPLETE_OPEN = update(ledger_entries).where(_OPEN_ROW, _E.state != bindparam("w_billed"))
_DROP_PENDING = delete(ledger_entries).where(_OPEN_ROW, _E.state == bindparam("w_pending"))
_CONFIRM_NEVER = update(ledger_entries).where(_OPEN_ROW, _E.state == bindparam("w_pending"))
_UNCONFIRM_JOB = update(ledger_entries).where(
    _E.job_id == bindparam("w_job"), _E.state == bindparam("w_pending")
)
_COUNTED = _E.state != "pending"  # in flight: its job's reservation still covers it
_INSERT_IGNORE = {
    "sqlite": sqlite.insert(ledger_entries).on_conflict_do_nothing().returning(_E.id),
    "postgresql": postgresql.insert(ledger_entries).on_conflict_do_nothing().returning(_E.id),
}


class SqlLedger:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        prices: PriceTable,
        *,
        reservation_ttl_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.prices = prices  # kept for reports (storage rates); charges arrive priced
        self._settings_budgets = settings_budgets(settings)
        self._ttl = reservation_ttl(settings, reservation_ttl_s)
        self._clock = clock

    # --- the Ledger protocol -----------------------------------------------------------------

    async def reserve(self, job_id: str, api_key_id: str | None, amount_micros: int) -> None:
        await self.db.write(self.reservation(job_id, api_key_id, amount_micros))

    def reservation(
        self, job_id: str, api_key_id: str | None, amount_micros: int
    ) -> Callable[[Connection], None]:
        """:meth:`reserve` as a unit of work, to run inside the transaction that creates the job
        (:meth:`JobStore.admit`): the job and its reservation commit together or not at all."""
        now = self._clock()

        def work(conn: Connection) -> None:
            _serialise(conn)
            execute(conn, _DROP_EXPIRED, budget_reservations, {"w_now": now})
            if _has_reservation(conn, job_id):
                return
            for budget in self._applicable(conn, api_key_id):
                spent = _spent(conn, budget, now)
                reserved = _reserved(conn, budget.scope, now)
                if not fits(budget, spent, reserved, amount_micros):
                    raise refuse(budget, spent, reserved, amount_micros)
            insert_row(
                conn,
                budget_reservations,
                {
                    "job_id": job_id,
                    "api_key_id": api_key_id,
                    "amount_micros": amount_micros,
                    "created_at": now,
                    "expires_at": now + self._ttl,
                },
            )

        return work

    async def open_attempt(self, charge: Charge) -> None:
        pending = _entry_values(charge, self._clock())
        pending |= {"provider_job_id": OPEN_RUN, "state": "pending"}
        await self.db.write(lambda conn: _insert_ignore(conn, pending))

    async def record(self, charge: Charge) -> bool:
        now = self._clock()
        values = _entry_values(charge, now)
        if charge.kind == "cache_hit":
            try:  # a cache hit's job id is brand new: no duplicate is possible
                await self.db.append([(ledger_entries, values)])
                return True
            except IntegrityError:
                pass  # recorded before (a retry): the idempotent path decides
            return await self.db.write(lambda conn: _insert_ignore(conn, values))
        return await self.db.write(lambda conn: _record_attempt(conn, values))

    async def close_attempt(self, job_id: str, attempt: int, *, charged: bool | None) -> None:
        where = _open_row(job_id, attempt) | {"w_pending": "pending"}
        if charged is False:
            await self.db.write(lambda conn: execute(conn, _DROP_PENDING, ledger_entries, where))
        elif charged is None:
            params = where | {"state": "unconfirmed"}
            await self.db.write(lambda conn: execute(conn, _CONFIRM_NEVER, ledger_entries, params))

    async def settle(self, job_id: str) -> None:
        await self._end_job(job_id)

    async def release(self, job_id: str) -> None:
        await self._end_job(job_id)

    async def totals(self, *, now: float | None = None) -> CostTotals:
        today = utc_day(self._clock() if now is None else now)
        query = select(
            func.coalesce(func.sum(case((_E.day == today, _E.amount_micros))), 0),
            func.coalesce(func.sum(_E.amount_micros), 0),
            func.coalesce(func.sum(_E.saved_micros), 0),
            _count_if(_E.amount_micros.is_(None)),
            func.count(distinct(_E.job_id)),
            _count_if(_E.state == "unconfirmed"),
        ).where(_COUNTED)
        row = await self.db.read_sync(lambda conn: conn.execute(query).one())
        return CostTotals(*(int(v) for v in row))

    async def usage(
        self, group_by: str, *, since: float | None = None, until: float | None = None
    ) -> list[UsageRow]:
        check_group_by(group_by)
        group = _group_column(group_by)
        query = (
            select(
                group,
                func.count(distinct(_E.job_id)),
                _count_if(_E.kind == "cache_hit"),
                func.coalesce(func.sum(_E.amount_micros), 0),
                func.coalesce(func.sum(_E.saved_micros), 0),
                _count_if(_E.amount_micros.is_(None)),
            )
            .where(_COUNTED, *_window(since, until))
            .group_by(group)
            .order_by(group)
        )
        rows = await self.db.read_sync(lambda conn: conn.execute(query).all())
        return [UsageRow(str(r[0]), *(int(v) for v in r[1:])) for r in rows]

    # --- extras (also on MemoryLedger) -------------------------------------------------------

    async def entries(self, job_id: str | None = None) -> list[LedgerEntry]:
        """Stored entries in insertion order, optionally of one job."""
        query = select(ledger_entries).order_by(_E.id)
        if job_id is not None:
            query = query.where(_E.job_id == job_id)
        rows = await self.db.read_sync(lambda conn: conn.execute(query).all())
        return [_entry(r) for r in rows]

    async def reserved_micros(self, scope: str = GLOBAL) -> int:
        """Sum of the active reservations counted against ``scope``."""
        now = self._clock()
        return await self.db.read_sync(lambda conn: _reserved(conn, scope, now))

    # --- internals -----------------------------------------------------------------------------

    def _applicable(self, conn: Connection, api_key_id: str | None) -> list[Budget]:
        return [*self._settings_budgets, *load_budgets(conn, scopes_for(api_key_id))]

    async def _end_job(self, job_id: str) -> None:
        """Drop the reservation; an attempt still pending now will never be answered."""

        def work(conn: Connection) -> None:
            execute(conn, _DROP_RESERVATION, budget_reservations, {"w_job": job_id})
            params = {"w_job": job_id, "w_pending": "pending", "state": "unconfirmed"}
            execute(conn, _UNCONFIRM_JOB, ledger_entries, params)

        await self.db.write(work)


def _serialise(conn: Connection) -> None:
    """Serialise reserve() across processes (SQLite: BEGIN IMMEDIATE already holds the lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RESERVE_LOCK_KEY})


def _has_reservation(conn: Connection, job_id: str) -> bool:
    found = first_row(conn, _HAS_RESERVATION, budget_reservations, {"w_job": job_id})
    return found is not None


def _key_filter(column: Any, scope: str) -> list[ColumnElement[bool]]:
    return [] if scope == GLOBAL else [column == scope[len(KEY_PREFIX) :]]


def _spent(conn: Connection, budget: Budget, now: float) -> int:
    first, last = period_days(budget.period, now)
    query = select(func.coalesce(func.sum(_E.amount_micros), 0)).where(
        _E.day >= first, _E.day <= last, _COUNTED, *_key_filter(_E.api_key_id, budget.scope)
    )
    return int(conn.execute(query).scalar_one())


def _reserved(conn: Connection, scope: str, now: float) -> int:
    query = select(func.coalesce(func.sum(_R.amount_micros), 0)).where(
        _R.expires_at > now, *_key_filter(_R.api_key_id, scope)
    )
    return int(conn.execute(query).scalar_one())


def _entry_values(charge: Charge, now: float) -> dict[str, Any]:
    return {
        "job_id": charge.job_id,
        "attempt": charge.attempt,
        "provider": charge.provider,
        "provider_job_id": charge.provider_job_id,
        "model": charge.model,
        "kind": charge.kind,
        "amount_micros": charge.price.amount_micros,
        "saved_micros": charge.saved_micros,
        "price_version": charge.price.version,
        "basis": charge.price.basis,
        "api_key_id": charge.api_key_id,
        "detail": dict(charge.detail),
        "day": utc_day(now),
        "created_at": now,
        "state": charge.state,
    }


def _open_row(job_id: str, attempt: int) -> dict[str, Any]:
    return {"w_job": job_id, "w_attempt": attempt, "w_kind": "attempt", "w_open": OPEN_RUN}


def _record_attempt(conn: Connection, values: dict[str, Any]) -> bool:
    """Complete the attempt's open row, or insert the charge unless it is there already."""
    completion = {
        k: values[k] for k in ("provider_job_id", "amount_micros", "price_version", "basis")
    }
    completion |= {"detail": values["detail"], "state": values["state"]}
    completion |= _open_row(values["job_id"], values["attempt"]) | {"w_billed": "billed"}
    if values["state"] == "billed" and execute(conn, _COMPLETE_OPEN, ledger_entries, completion):
        return True
    return _insert_ignore(conn, values)


def _insert_ignore(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert unless the (job, attempt, provider job, kind) row exists; True when inserted."""
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        return first_row(conn, _INSERT_IGNORE[name], ledger_entries, values) is not None
    try:  # other dialects: a savepoint keeps the outer transaction usable
        with conn.begin_nested():
            conn.execute(insert(ledger_entries).values(values))
    except IntegrityError:
        return False
    return True


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


def _entry(row: Row[Any]) -> LedgerEntry:
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
    )
    return LedgerEntry(charge, float(m["created_at"]), m["day"])
