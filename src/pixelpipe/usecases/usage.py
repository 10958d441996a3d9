"""The usage report: spend, cache savings and unpriced events grouped by model, provider, key or
day, plus what is stored and its monthly cost at the storage backend's rate, and what an image
costs on each provider (self-hosted backends in GPU time beside the hosted ones: "what does my
GPU cost per image vs Replicate?").

One report for ``GET /v1/usage``, ``GET /v1/costs`` and ``pixelpipe usage``. A storage backend
with no price in the price table gets an unpriced (None) monthly cost, never an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pixelpipe.errors import ConfigError
from pixelpipe.ledger.base import CostTotals, ImageCostRow, Ledger, UsageRow
from pixelpipe.ledger.policy import NO_KEY, decimal_usd
from pixelpipe.moderation.base import ModerationLog, ModerationRow
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
    moderation: ModerationLog | None = None  # prompts refused, images blocked (per key, day)


@dataclass(frozen=True, slots=True)
class StorageCost:
    backend: str
    images: int
    bytes: int
    monthly_micros: int | None  # None: the price table has no rate for this backend


@dataclass(frozen=True, slots=True)
class PerImage:
    """$/image per provider, and per model on each provider (:class:`ImageCostRow`)."""

    providers: list[ImageCostRow]
    models: list[ImageCostRow]


@dataclass(frozen=True, slots=True)
class UsageReport:
    rows: list[UsageRow]
    total: UsageRow
    storage: StorageCost | None
    per_image: PerImage
    moderation: list[ModerationRow] = dataclasses.field(default_factory=list)


def books_of(svc: Services) -> Books:
    return Books(svc.ledger, svc.store, svc.prices, svc.storage.scheme, svc.moderation.log)


async def usage_report(
    books: Books, group_by: str, *, since: float | None = None, until: float | None = None
) -> UsageReport:
    rows = await books.ledger.usage(group_by, since=since, until=until)
    per_image = await image_costs(books, since=since, until=until)
    moderated = await books.moderation.report(since=since, until=until) if books.moderation else []
    return UsageReport(rows, UsageRow.total(rows), await storage_cost(books), per_image, moderated)


def moderation_fields(row: ModerationRow) -> dict[str, Any]:
    """One moderation row as the API and the CLI show it: prompts refused and images blocked,
    blurred, flagged or let through unchecked, per UTC day and API key (``-``: no key), with what
    the images' attempts cost (paid: blocked images are spent, never $0)."""
    return {
        "day": row.day,
        "key": row.api_key_id or NO_KEY,
        "kind": row.kind,
        "action": row.action,
        "count": row.count,
        "spent_usd": decimal_usd(row.spent_micros),
        "spent_micros": row.spent_micros,
        "unpriced": row.unpriced,
    }


async def image_costs(
    books: Books, *, since: float | None = None, until: float | None = None
) -> PerImage:
    """What an image costs on each provider (its models summed) and per model on it."""
    models = await books.ledger.image_costs(since=since, until=until)
    by_provider: dict[str, list[ImageCostRow]] = {}
    for row in models:
        by_provider.setdefault(row.provider, []).append(row)
    providers = [ImageCostRow.combined(p, rows) for p, rows in sorted(by_provider.items())]
    return PerImage(providers, models)


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


def image_cost_fields(row: ImageCostRow) -> dict[str, Any]:
    """One $/image row as ``GET /v1/usage`` and ``pixelpipe usage --json`` print it (money as
    exact decimal strings and micros; ``None`` = unknown, never $0; ``gpu`` None: no GPU time)."""
    per_image = row.micros_per_image
    return {
        "provider": row.provider,
        "model": row.model,
        "images": row.images,
        "priced_images": row.priced_images,
        "unpriced_images": row.unpriced_images,
        "spent_usd": decimal_usd(row.spent_micros),
        "spent_micros": row.spent_micros,
        "usd_per_image": None if per_image is None else decimal_usd(per_image),
        "micros_per_image": per_image,
        "gpu": _gpu_fields(row),
    }


def _gpu_fields(row: ImageCostRow) -> dict[str, Any] | None:
    if row.gpu_time_source is None:
        return None
    per_image = row.gpu_seconds_per_image
    return {
        "seconds": round(row.gpu_seconds, 3),
        "seconds_per_image": None if per_image is None else round(per_image, 3),
        "source": row.gpu_time_source,
        "server_timed": row.server_timed,
        "wall_timed": row.wall_timed,
    }
