"""SqlLedger: the ledger and budgets on SQLite (embedded) or PostgreSQL (scale-out).

Exactly once: ``record`` inserts with ON CONFLICT DO NOTHING on the unique
(job_id, attempt, provider_job_id, kind), so a duplicate webhook, a retry or a restart after a crash
finds the row already there and adds nothing. A provider attempt is in the ledger before its request
is sent (``open_attempt``: a ``pending`` row with no run id, at the estimate); its charge completes
that row (one guarded UPDATE), so the attempt stays one row. Pending rows are not counted as spent
(the job's reservation covers them); unconfirmed ones are.

No overspend: see :mod:`.reserve`. Reservations expire (job deadline plus a margin), so a crash
between reserving and creating the job cannot hold budget forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from pixelpipe.compiled_sql import execute, first_row
from pixelpipe.db import Database
from pixelpipe.ledger.base import (
    OPEN_RUN,
    Charge,
    CostTotals,
    ImageCostRow,
    Reservation,
    UsageRow,
)
from pixelpipe.ledger.entry import LedgerEntry, check_group_by
from pixelpipe.ledger.policy import GLOBAL, reservation_ttl, settings_budgets, utc_day
from pixelpipe.ledger.sql.reports import (
    entry_of,
    image_cost_query,
    image_cost_row,
    totals_query,
    usage_query,
)
from pixelpipe.ledger.sql.reserve import make_reservation, reserved_micros
from pixelpipe.ledger.tables import budget_reservations, ledger_entries
from pixelpipe.pricing.table import PriceTable
from pixelpipe.settings import Settings

_E = ledger_entries.c
_R = budget_reservations.c
# built once, values bound at execution (building ``.values(...)`` per call costs ~0.3 ms of CPU)
_DROP_RESERVATION = delete(budget_reservations).where(_R.job_id == bindparam("w_job"))
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
_MARK_BLOCKED = update(ledger_entries).where(
    _E.job_id == bindparam("w_job"),
    _E.attempt == bindparam("w_attempt"),
    _E.kind == bindparam("w_kind"),
    _E.state != bindparam("w_pending"),
    _E.outcome.is_(None),
)
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
        self._settings_budgets = tuple(settings_budgets(settings))
        self._ttl = reservation_ttl(settings, reservation_ttl_s)
        self._clock = clock

    # --- the Ledger protocol -----------------------------------------------------------------

    async def reserve(self, job_id: str, api_key_id: str | None, amount_micros: int) -> None:
        reservation = self.reservation(job_id, api_key_id, amount_micros)
        await self.db.write(lambda conn: make_reservation(conn, reservation))

    def reservation(self, job_id: str, api_key_id: str | None, amount_micros: int) -> Reservation:
        """:meth:`reserve` as a value, made inside the transaction that creates the job
        (``JobStore.admit``): the job and its reservation commit together or not at all."""
        now = self._clock()
        return Reservation(
            job_id, api_key_id, amount_micros, now, now + self._ttl, self._settings_budgets
        )

    def entry_values(self, charge: Charge) -> dict[str, Any]:
        """A new job's charge as the row the job store inserts with the job (no conflict is
        possible: the job id is brand new)."""
        return _entry_values(charge, self._clock())

    def pending_values(self, charge: Charge) -> dict[str, Any]:
        """The attempt's pending row (:meth:`open_attempt`'s), for :func:`insert_entry`."""
        pending = _entry_values(charge, self._clock())
        return pending | {"provider_job_id": OPEN_RUN, "state": "pending"}

    async def open_attempt(self, charge: Charge) -> None:
        pending = self.pending_values(charge)
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

    async def mark_blocked(self, job_id: str, attempt: int) -> bool:
        params = {
            "w_job": job_id,
            "w_attempt": attempt,
            "w_kind": "attempt",
            "w_pending": "pending",
            "outcome": "blocked",
        }
        marked = await self.db.write(
            lambda conn: execute(conn, _MARK_BLOCKED, ledger_entries, params)
        )
        return marked > 0

    async def settle(self, job_id: str) -> None:
        await self._end_job(job_id)

    async def release(self, job_id: str) -> None:
        await self._end_job(job_id)

    async def totals(self, *, now: float | None = None) -> CostTotals:
        query = totals_query(utc_day(self._clock() if now is None else now))
        row = await self.db.read_sync(lambda conn: conn.execute(query).one())
        return CostTotals(*(int(v) for v in row))

    async def usage(
        self, group_by: str, *, since: float | None = None, until: float | None = None
    ) -> list[UsageRow]:
        check_group_by(group_by)
        query = usage_query(group_by, since, until)
        rows = await self.db.read_sync(lambda conn: conn.execute(query).all())
        return [UsageRow(str(r[0]), *(int(v) for v in r[1:])) for r in rows]

    async def image_costs(
        self, *, since: float | None = None, until: float | None = None
    ) -> list[ImageCostRow]:
        query = image_cost_query(since, until)
        rows = await self.db.read_sync(lambda conn: conn.execute(query).all())
        return [image_cost_row(r) for r in rows]

    # --- extras (also on MemoryLedger) -------------------------------------------------------

    async def entries(self, job_id: str | None = None) -> list[LedgerEntry]:
        """Stored entries in insertion order, optionally of one job."""
        query = select(ledger_entries).order_by(_E.id)
        if job_id is not None:
            query = query.where(_E.job_id == job_id)
        rows = await self.db.read_sync(lambda conn: conn.execute(query).all())
        return [entry_of(r) for r in rows]

    async def reserved_micros(self, scope: str = GLOBAL) -> int:
        """Sum of the active reservations counted against ``scope``."""
        now = self._clock()
        return await self.db.read_sync(lambda conn: reserved_micros(conn, scope, now))

    # --- internals -----------------------------------------------------------------------------

    async def _end_job(self, job_id: str) -> None:
        """Drop the reservation; an attempt still pending now will never be answered."""

        def work(conn: Connection) -> None:
            execute(conn, _DROP_RESERVATION, budget_reservations, {"w_job": job_id})
            params = {"w_job": job_id, "w_pending": "pending", "state": "unconfirmed"}
            execute(conn, _UNCONFIRM_JOB, ledger_entries, params)

        await self.db.write(work)


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
        "outcome": charge.outcome,
    }


def _open_row(job_id: str, attempt: int) -> dict[str, Any]:
    return {"w_job": job_id, "w_attempt": attempt, "w_kind": "attempt", "w_open": OPEN_RUN}


def _record_attempt(conn: Connection, values: dict[str, Any]) -> bool:
    """Complete the attempt's open row, or insert the charge unless it is there already."""
    completion = {
        k: values[k] for k in ("provider_job_id", "amount_micros", "price_version", "basis")
    }
    completion |= {
        "detail": values["detail"],
        "state": values["state"],
        "outcome": values["outcome"],
    }
    completion |= _open_row(values["job_id"], values["attempt"]) | {"w_billed": "billed"}
    if values["state"] == "billed" and execute(conn, _COMPLETE_OPEN, ledger_entries, completion):
        return True
    return _insert_ignore(conn, values)


def insert_entry(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert a ledger row from :meth:`SqlLedger.pending_values` in ``conn``'s transaction (the
    job store's), unless it is there already; True when inserted."""
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
