"""MemoryLedger: the in-process fake, with the same semantics as :class:`SqlLedger`.

For unit tests and throw-away runs. ``reserve`` runs its check-and-insert without awaiting in
between, so concurrent coroutines cannot overspend (one event loop, one process).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable

from pixelpipe.ledger.base import (
    OPEN_RUN,
    Budget,
    Charge,
    CostTotals,
    ImageCostRow,
    Reservation,
    UsageRow,
)
from pixelpipe.ledger.entry import LedgerEntry, charge_key, check_group_by
from pixelpipe.ledger.image_costs import image_costs
from pixelpipe.ledger.policy import (
    GLOBAL,
    check_budget,
    fits,
    period_days,
    refuse,
    reservation_ttl,
    scopes_for,
    settings_budgets,
    utc_day,
)
from pixelpipe.settings import Settings


class MemoryLedger:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        budgets: Iterable[Budget] = (),
        reservation_ttl_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings_budgets = settings_budgets(settings)
        self._budgets: dict[tuple[str, str], Budget] = {(b.scope, b.period): b for b in budgets}
        self._ttl = reservation_ttl(settings, reservation_ttl_s)
        self._clock = clock
        self._entries: dict[tuple[str, int, str, str], LedgerEntry] = {}
        self._reservations: dict[str, Reservation] = {}

    # --- budgets ---------------------------------------------------------------------------

    async def set_budget(self, scope: str, period: str, limit_micros: int) -> None:
        typed = check_budget(scope, period, limit_micros)
        self._budgets[(scope, typed)] = Budget(scope, typed, limit_micros)

    async def delete_budget(self, scope: str, period: str) -> None:
        self._budgets = {k: b for k, b in self._budgets.items() if k != (scope, period)}

    async def list_budgets(self) -> list[Budget]:
        return [*self._settings_budgets, *sorted(self._budgets.values(), key=_budget_order)]

    def _applicable(self, api_key_id: str | None) -> list[Budget]:
        scopes = scopes_for(api_key_id)
        table = [b for b in self._budgets.values() if b.scope in scopes]
        return [*self._settings_budgets, *table]

    # --- the Ledger protocol -----------------------------------------------------------------

    def reservation(self, job_id: str, api_key_id: str | None, amount_micros: int) -> None:
        """No shared transaction here: callers use :meth:`reserve`."""
        return None

    def pending_values(self, charge: Charge) -> None:
        """No shared transaction here: callers use :meth:`open_attempt`."""
        return None

    def entry_values(self, charge: Charge) -> None:
        """No shared transaction here: callers use :meth:`record`."""
        return None

    async def reserve(self, job_id: str, api_key_id: str | None, amount_micros: int) -> None:
        now = self._clock()
        existing = self._reservations.get(job_id)
        if existing is not None and existing.active(now):
            return
        for budget in self._applicable(api_key_id):
            spent = self._spent(budget, now)
            reserved = self._reserved(budget.scope, now)
            if not fits(budget, spent, reserved, amount_micros):
                raise refuse(budget, spent, reserved, amount_micros)
        self._reservations[job_id] = Reservation(
            job_id, api_key_id, amount_micros, now, now + self._ttl
        )

    async def open_attempt(self, charge: Charge) -> None:
        pending = dataclasses.replace(charge, provider_job_id=OPEN_RUN, state="pending")
        key = charge_key(pending)
        if key not in self._entries:
            now = self._clock()
            self._entries[key] = LedgerEntry(pending, now, utc_day(now))

    async def record(self, charge: Charge) -> bool:
        key = charge_key(charge)
        if key in self._entries:
            return False
        open_key = (charge.job_id, charge.attempt, OPEN_RUN, charge.kind)
        found = self._entries.get(open_key)
        if charge.kind == "attempt" and found is not None and found.charge.state != "billed":
            del self._entries[open_key]  # completed in place: keeps its time, takes the charge
            charge = dataclasses.replace(charge, state="billed")
            self._entries[key] = dataclasses.replace(found, charge=charge)
            return True
        now = self._clock()
        self._entries[key] = LedgerEntry(charge, now, utc_day(now))
        return True

    async def close_attempt(self, job_id: str, attempt: int, *, charged: bool | None) -> None:
        key = (job_id, attempt, OPEN_RUN, "attempt")
        found = self._entries.get(key)
        if found is None or found.charge.state != "pending":
            return
        if charged is False:
            del self._entries[key]
        elif charged is None:
            self._unconfirm(key, found)

    async def mark_blocked(self, job_id: str, attempt: int) -> bool:
        for key, entry in self._entries.items():
            c = entry.charge
            if (c.job_id, c.attempt, c.kind) != (job_id, attempt, "attempt"):
                continue
            if c.state == "pending" or c.outcome is not None:
                continue
            blocked = dataclasses.replace(c, outcome="blocked")
            self._entries[key] = dataclasses.replace(entry, charge=blocked)
            return True
        return False

    async def settle(self, job_id: str) -> None:
        self._end_job(job_id)

    async def release(self, job_id: str) -> None:
        self._end_job(job_id)

    def _end_job(self, job_id: str) -> None:
        self._reservations.pop(job_id, None)
        for key, entry in list(self._entries.items()):
            if entry.charge.job_id == job_id and entry.charge.state == "pending":
                self._unconfirm(key, entry)

    def _unconfirm(self, key: tuple[str, int, str, str], entry: LedgerEntry) -> None:
        charge = dataclasses.replace(entry.charge, state="unconfirmed")
        self._entries[key] = dataclasses.replace(entry, charge=charge)

    async def totals(self, *, now: float | None = None) -> CostTotals:
        today = utc_day(self._clock() if now is None else now)
        entries = self._counted()
        return CostTotals(
            spent_today_micros=sum(e.amount_micros or 0 for e in entries if e.day == today),
            spent_total_micros=sum(e.amount_micros or 0 for e in entries),
            saved_total_micros=sum(e.charge.saved_micros or 0 for e in entries),
            unpriced_events=sum(1 for e in entries if e.amount_micros is None),
            images=len({e.charge.job_id for e in entries}),
            unconfirmed_events=sum(1 for e in entries if e.charge.state == "unconfirmed"),
        )

    async def usage(
        self, group_by: str, *, since: float | None = None, until: float | None = None
    ) -> list[UsageRow]:
        check_group_by(group_by)
        groups: dict[str, list[LedgerEntry]] = {}
        for e in self._window(since, until):
            groups.setdefault(e.group(group_by), []).append(e)
        return [_row(group, entries) for group, entries in sorted(groups.items())]

    async def image_costs(
        self, *, since: float | None = None, until: float | None = None
    ) -> list[ImageCostRow]:
        return image_costs(self._window(since, until))

    # --- extras (also on SqlLedger) ------------------------------------------------------------

    async def entries(self, job_id: str | None = None) -> list[LedgerEntry]:
        """Stored entries in insertion order, optionally of one job."""
        return [e for e in self._entries.values() if job_id is None or e.charge.job_id == job_id]

    async def reserved_micros(self, scope: str = GLOBAL) -> int:
        """Sum of the active reservations counted against ``scope``."""
        return self._reserved(scope, self._clock())

    # --- internals -----------------------------------------------------------------------------

    def _counted(self) -> list[LedgerEntry]:
        """Entries counted as spent: not the pending ones (their job's reservation covers them)."""
        return [e for e in self._entries.values() if e.charge.state != "pending"]

    def _window(self, since: float | None, until: float | None) -> list[LedgerEntry]:
        return [
            e
            for e in self._counted()
            if (since is None or e.created_at >= since) and (until is None or e.created_at < until)
        ]

    def _spent(self, budget: Budget, now: float) -> int:
        first, last = period_days(budget.period, now)
        return sum(
            e.amount_micros or 0
            for e in self._counted()
            if first <= e.day <= last and _in_scope(budget.scope, e.charge.api_key_id)
        )

    def _reserved(self, scope: str, now: float) -> int:
        return sum(
            r.amount_micros
            for r in self._reservations.values()
            if r.active(now) and _in_scope(scope, r.api_key_id)
        )


def _in_scope(scope: str, api_key_id: str | None) -> bool:
    return scope == GLOBAL or (api_key_id is not None and scope == "key:" + api_key_id)


def _budget_order(b: Budget) -> tuple[bool, str, str]:
    return (b.scope != GLOBAL, b.scope, b.period)


def _row(group: str, entries: list[LedgerEntry]) -> UsageRow:
    return UsageRow(
        group=group,
        requests=len({e.charge.job_id for e in entries}),
        cache_hits=sum(1 for e in entries if e.charge.kind == "cache_hit"),
        spent_micros=sum(e.amount_micros or 0 for e in entries),
        saved_micros=sum(e.charge.saved_micros or 0 for e in entries),
        unpriced_events=sum(1 for e in entries if e.amount_micros is None),
    )
