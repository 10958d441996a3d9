"""What a ledger stores: entries (charges with their time)."""

from __future__ import annotations

from dataclasses import dataclass

from pixelpipe.errors import InvalidRequest
from pixelpipe.ledger.base import Charge
from pixelpipe.ledger.policy import GROUP_BYS, NO_KEY


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One stored charge. ``amount_micros`` None = unpriced."""

    charge: Charge
    created_at: float
    day: str  # UTC YYYY-MM-DD of created_at

    @property
    def amount_micros(self) -> int | None:
        return self.charge.price.amount_micros

    def group(self, group_by: str) -> str:
        c = self.charge
        values = {"model": c.model, "provider": c.provider, "key": c.api_key_id or NO_KEY}
        return values.get(group_by, self.day)


def check_group_by(group_by: str) -> None:
    if group_by not in GROUP_BYS:
        raise InvalidRequest(
            f"group_by must be one of {', '.join(GROUP_BYS)}, not {group_by!r}", field="group_by"
        )


def charge_key(charge: Charge) -> tuple[str, int, str, str]:
    """The idempotency key of a charge: one entry per (job, attempt, provider job, kind)."""
    return (charge.job_id, charge.attempt, charge.provider_job_id, charge.kind)
