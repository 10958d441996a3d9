"""Budget rules shared by every ledger: which budgets apply, periods, and the refusal message.

Budgets are ``(scope, period, limit_micros)``: scope ``"global"`` or ``"key:<api key id>"``, period
``"day"`` or ``"month"`` (UTC calendar periods). The global ones come from settings
(``PIXELPIPE_BUDGET_DAILY_USD`` / ``PIXELPIPE_BUDGET_MONTHLY_USD``) and from the budgets table
(``pixelpipe budgets set``); when both define one, both apply — the stricter wins.

A request fits a budget when ``spent in the period + active reservations + estimate <= limit``.
Spent counts priced ledger entries only (unpriced ones are reported, never guessed). Active
reservations count whatever period they were made in, and while a job has both a reservation and
recorded charges both count (conservative: the reservation is dropped when the job settles).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal

from pixelpipe.errors import BudgetExceeded, InvalidRequest
from pixelpipe.ledger.base import Budget, Period
from pixelpipe.pricing.price import MICROS
from pixelpipe.settings import Settings

PERIODS: tuple[Period, ...] = ("day", "month")
GLOBAL = "global"
KEY_PREFIX = "key:"
NO_KEY = "-"  # usage group of entries without an API key
DEFAULT_RESERVATION_TTL_S = 3600.0
GROUP_BYS = ("model", "provider", "key", "day")


def check_budget(scope: str, period: str, limit_micros: int) -> Period:
    """Validate a budget definition (CLI/API input); returns the period typed."""
    if scope != GLOBAL and not (scope.startswith(KEY_PREFIX) and len(scope) > len(KEY_PREFIX)):
        raise InvalidRequest(f"budget scope {scope!r} must be 'global' or 'key:<api key id>'")
    if period not in PERIODS:
        raise InvalidRequest(f"budget period {period!r} must be 'day' or 'month'")
    if limit_micros < 0:
        raise InvalidRequest("a budget limit cannot be negative; delete the budget to remove it")
    return "day" if period == "day" else "month"


def key_scope(api_key_id: str) -> str:
    return KEY_PREFIX + api_key_id


def scopes_for(api_key_id: str | None) -> tuple[str, ...]:
    """The budget scopes a request by ``api_key_id`` is charged against."""
    return (GLOBAL,) if api_key_id is None else (GLOBAL, key_scope(api_key_id))


def usd_to_micros(usd: float) -> int:
    return int(Decimal(str(usd)) * MICROS)


def settings_budgets(settings: Settings | None) -> list[Budget]:
    if settings is None:
        return []
    pairs: list[tuple[Period, float | None]] = [
        ("day", settings.budget_daily_usd),
        ("month", settings.budget_monthly_usd),
    ]
    return [
        Budget(GLOBAL, p, usd_to_micros(usd), "settings") for p, usd in pairs if usd is not None
    ]


def reservation_ttl(settings: Settings | None, ttl_s: float | None) -> float:
    """How long a reservation holds: the job deadline plus a margin, unless given."""
    if ttl_s is not None:
        return ttl_s
    if settings is None:
        return DEFAULT_RESERVATION_TTL_S
    return settings.job_deadline_s + 600.0


def utc_day(ts: float) -> str:
    return _day_name(int(ts // 86_400))  # UTC days are 86,400 s long (no leap seconds in Unix time)


@functools.lru_cache(maxsize=64)
def _day_name(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * 86_400, UTC).strftime("%Y-%m-%d")


def period_days(period: str, now: float) -> tuple[str, str]:
    """Inclusive (first, last) UTC day strings of the period containing ``now``."""
    day = utc_day(now)
    return (day, day) if period == "day" else (day[:8] + "01", day[:8] + "31")


def decimal_usd(micros: int) -> str:
    """0.003, 10.00, 0.25: exact dollars, at least cents, more digits only when they matter."""
    if micros == 0:
        return "0.00"
    text = f"{Decimal(micros) / MICROS:f}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def format_usd(micros: int) -> str:
    """$0.003, $10.00, $0.25."""
    return "$" + decimal_usd(micros)


def _describe(budget: Budget) -> str:
    adjective = "daily" if budget.period == "day" else "monthly"
    if budget.scope == GLOBAL:
        return f"the global {adjective} budget"
    return f"the {adjective} budget of API key {budget.scope[len(KEY_PREFIX) :]!r}"


def _fix(budget: Budget) -> str:
    if budget.source == "settings":
        var = (
            "PIXELPIPE_BUDGET_DAILY_USD"
            if budget.period == "day"
            else "PIXELPIPE_BUDGET_MONTHLY_USD"
        )
        raise_it = f"raise {var}"
    else:
        raise_it = f"raise it with `pixelpipe budgets set {budget.scope} {budget.period} <usd>`"
    resets = "00:00 UTC" if budget.period == "day" else "the 1st of next month (UTC)"
    return f"{raise_it}, choose a cheaper model or size, or wait until {resets}"


def refuse(budget: Budget, spent: int, reserved: int, amount: int) -> BudgetExceeded:
    """The error for a request of ``amount`` that does not fit ``budget``."""
    period = "today" if budget.period == "day" else "this month"
    detail = (
        f"{_describe(budget)} of {format_usd(budget.limit_micros)} would be exceeded: "
        f"{format_usd(spent)} spent and {format_usd(reserved)} reserved {period}, and this request "
        f"needs an estimated {format_usd(amount)}. To go on, {_fix(budget)}."
    )
    return BudgetExceeded(
        detail,
        budget=budget.scope,
        period=budget.period,
        limit_micros=budget.limit_micros,
        spent_micros=spent,
        reserved_micros=reserved,
        requested_micros=amount,
    )


def fits(budget: Budget, spent: int, reserved: int, amount: int) -> bool:
    return spent + reserved + amount <= budget.limit_micros
