"""The usage report: spend, cache savings and unpriced events grouped by model, provider, key or
day, plus what is stored and its monthly cost at the storage backend's rate.

One report for ``GET /v1/usage``, ``GET /v1/costs`` and ``pixelpipe usage``. A storage backend
with no price in the price table gets an unpriced (None) monthly cost, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pixelpipe.errors import ConfigError
from pixelpipe.ledger.base import CostTotals, Ledger, UsageRow
from pixelpipe.pricing import PriceTable

if TYPE_CHECKING:  # the report needs no Services: `pixelpipe usage` starts on the database alone
    from pixelpipe.services import Services


class ImageStats(Protocol):
    """What the report reads from the image index (:class:`~pixelpipe.jobs.store.ImageIndex`)."""

    async def image_stats(self) -> tuple[int, int]:
        """(images stored, their bytes)."""
        ...


@dataclass(frozen=True, slots=True)
class Books:
    """What the report reads. ``storage_backend``: the storage URL's scheme (None: a backend
    that names none, whose storage is then left out of the report)."""

    ledger: Ledger
    images: ImageStats
    prices: PriceTable
    storage_backend: str | None


@dataclass(frozen=True, slots=True)
class StorageCost:
    backend: str
    images: int
    bytes: int
    monthly_micros: int | None  # None: the price table has no rate for this backend


@dataclass(frozen=True, slots=True)
class UsageReport:
    rows: list[UsageRow]
    total: UsageRow
    storage: StorageCost | None


def books_of(svc: Services) -> Books:
    return Books(svc.ledger, svc.store, svc.prices, svc.storage.scheme)


async def usage_report(
    books: Books, group_by: str, *, since: float | None = None, until: float | None = None
) -> UsageReport:
    rows = await books.ledger.usage(group_by, since=since, until=until)
    return UsageReport(rows, UsageRow.total(rows), await storage_cost(books))


async def storage_cost(books: Books) -> StorageCost | None:
    if books.storage_backend is None:
        return None
    count, stored = await books.images.image_stats()
    try:
        monthly: int | None = books.prices.storage_month_micros(books.storage_backend, stored)
    except ConfigError:  # no rate for this backend: unpriced, not an error
        monthly = None
    return StorageCost(books.storage_backend, count, stored, monthly)


async def cost_totals(books: Books) -> CostTotals:
    """Spent today and in total, saved by the cache (the cost counter)."""
    return await books.ledger.totals()
