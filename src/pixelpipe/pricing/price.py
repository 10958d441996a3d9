"""A price: integer micro-dollars (1 USD = 1_000_000) and the price-table version it came from.

``amount_micros=None`` means *unpriced* (unknown price) and is never treated as $0.
"""

from __future__ import annotations

from dataclasses import dataclass

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    amount_micros: int | None  # None = unpriced
    version: str  # price-table version this was priced with
    basis: str  # per_image | per_megapixel | quality_size | tokens | free | unknown
