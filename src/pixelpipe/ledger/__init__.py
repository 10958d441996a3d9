"""Stage 11 — the cost ledger and budgets (protocol in :mod:`pixelpipe.ledger.base`)."""

from pixelpipe.ledger.base import (
    Budget,
    Charge,
    CostTotals,
    ImageCostRow,
    Ledger,
    Reservation,
    UsageRow,
)
from pixelpipe.ledger.entry import LedgerEntry
from pixelpipe.ledger.memory import MemoryLedger
from pixelpipe.ledger.policy import format_usd
from pixelpipe.pricing.price import MICROS, Price

__all__ = [
    "MICROS",
    "Budget",
    "Charge",
    "CostTotals",
    "ImageCostRow",
    "Ledger",
    "LedgerEntry",
    "MemoryLedger",
    "Price",
    "Reservation",
    "UsageRow",
    "format_usd",
]
