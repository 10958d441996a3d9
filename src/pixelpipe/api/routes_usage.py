"""``GET /v1/usage``: spend, cache savings and unpriced events grouped by model, provider, key or
day — as JSON, or as CSV with ``format=csv`` or ``Accept: text/csv`` — and (JSON) what an image
costs on each provider: self-hosted backends' GPU time beside the hosted providers' prices.

Unpriced events are counted in their own column, never folded into $0. The JSON form also reports
what is stored (images, bytes) and its monthly cost at the configured storage backend's rate.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from pixelpipe.errors import InvalidRequest
from pixelpipe.ledger.base import UsageRow
from pixelpipe.ledger.policy import decimal_usd
from pixelpipe.services import Services
from pixelpipe.usecases import usage
from pixelpipe.usecases.usage import (
    PerImage,
    StorageCost,
    image_cost_fields,
    moderation_fields,
)

router = APIRouter(tags=["costs"])

GroupBy = Literal["model", "provider", "key", "day"]
CSV_COLUMNS = ("group", "requests", "cache_hits", "spent_usd", "saved_usd", "unpriced_events")


class UsageRowPublic(BaseModel):
    group: str
    requests: int = Field(description="Distinct generations with a ledger entry in the group")
    cache_hits: int
    spent_usd: str
    spent_micros: int = Field(description="Priced spend only; see unpriced_events")
    saved_usd: str
    saved_micros: int
    unpriced_events: int = Field(description="Billable events whose price is unknown (not $0)")


class StoragePublic(BaseModel):
    backend: str
    images: int
    bytes: int
    monthly_usd: str | None = Field(description="At the backend's $/GB-month; null = unpriced")
    monthly_micros: int | None


class GpuTimePublic(BaseModel):
    seconds: float = Field(description="GPU-seconds of every attempt (failed billed runs too)")
    seconds_per_image: float | None = Field(description="Mean GPU-seconds of an image")
    source: Literal["server", "wall", "mixed"] = Field(
        description="The measure: the backend's own (server), pixelpipe's wall time, or both"
    )
    server_timed: int = Field(description="Attempts timed by the backend itself")
    wall_timed: int = Field(description="Attempts timed by pixelpipe's wall clock")


class ImageCostPublic(BaseModel):
    provider: str
    model: str | None = Field(description="null: every model of the provider")
    images: int = Field(description="Images the provider delivered (succeeded attempts)")
    priced_images: int
    unpriced_images: int = Field(description="Images whose price is unknown (not $0)")
    spent_usd: str = Field(description="What the priced images cost")
    spent_micros: int
    usd_per_image: str | None = Field(description="Mean cost of a priced image; null = none")
    micros_per_image: int | None
    gpu: GpuTimePublic | None = Field(
        description="Self-hosted backends (priced in GPU time); null for hosted providers"
    )


class PerImagePublic(BaseModel):
    """$/image per provider and per model on each provider: "what does my GPU cost per image
    vs Replicate?" (cache hits and attempts still in flight are left out)."""

    providers: list[ImageCostPublic] = Field(default_factory=list)
    models: list[ImageCostPublic] = Field(default_factory=list)


class ModerationRowPublic(BaseModel):
    day: str = Field(description="UTC day")
    key: str = Field(description="API key id; - = no key")
    kind: Literal["prompt", "image"]
    action: Literal["refused", "blocked", "blurred", "flagged", "unchecked"]
    count: int
    spent_usd: str = Field(description="What the images' attempts cost (blocked ones too)")
    spent_micros: int
    unpriced: int = Field(description="Images whose price is unknown (not $0)")


class UsagePublic(BaseModel):
    group_by: GroupBy
    since: str | None
    until: str | None
    rows: list[UsageRowPublic]
    total: UsageRowPublic
    storage: StoragePublic | None
    per_image: PerImagePublic = Field(default_factory=PerImagePublic)
    moderation: list[ModerationRowPublic] = Field(
        default_factory=list,
        description="Prompts refused and images blocked/blurred/flagged, per day and key",
    )


def parse_time(value: str | None, name: str) -> float | None:
    """Epoch seconds, an ISO 8601 datetime (naive = UTC) or a date (00:00 UTC)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{name} must be a date (2026-01-31), an ISO 8601 time or epoch seconds",
            field=name,
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _public(row: UsageRow) -> UsageRowPublic:
    return UsageRowPublic(
        group=row.group,
        requests=row.requests,
        cache_hits=row.cache_hits,
        spent_usd=decimal_usd(row.spent_micros),
        spent_micros=row.spent_micros,
        saved_usd=decimal_usd(row.saved_micros),
        saved_micros=row.saved_micros,
        unpriced_events=row.unpriced_events,
    )


def _storage(cost: StorageCost | None) -> StoragePublic | None:
    if cost is None:
        return None
    monthly = cost.monthly_micros
    return StoragePublic(
        backend=cost.backend,
        images=cost.images,
        bytes=cost.bytes,
        monthly_usd=None if monthly is None else decimal_usd(monthly),
        monthly_micros=monthly,
    )


def _per_image(per_image: PerImage) -> PerImagePublic:
    return PerImagePublic(
        providers=[ImageCostPublic(**image_cost_fields(r)) for r in per_image.providers],
        models=[ImageCostPublic(**image_cost_fields(r)) for r in per_image.models],
    )


def to_csv(rows: list[UsageRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        p = _public(r)
        writer.writerow(
            [p.group, p.requests, p.cache_hits, p.spent_usd, p.saved_usd, p.unpriced_events]
        )
    return out.getvalue()


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


@router.get(
    "/v1/usage",
    response_model=UsagePublic,
    responses={200: {"content": {"text/csv": {}}}},
)
async def usage_report(
    request: Request,
    group_by: GroupBy = "model",
    since: str | None = Query(None, description="From (inclusive): date, ISO time or epoch s"),
    until: str | None = Query(None, description="To (exclusive): date, ISO time or epoch s"),
    format: Literal["json", "csv"] | None = Query(None, description="Default: from Accept"),
) -> UsagePublic | Response:
    """Spend, cache savings and unpriced events grouped by model, provider, API key or UTC day,
    and $/image per provider (self-hosted GPU time beside hosted prices) in ``per_image``."""
    svc: Services = request.app.state.services
    start, end = parse_time(since, "since"), parse_time(until, "until")
    report = await usage.usage_report(usage.books_of(svc), group_by, since=start, until=end)
    if _wants_csv(request, format):
        headers = {"Content-Disposition": f'attachment; filename="usage-{group_by}.csv"'}
        return Response(
            to_csv([*report.rows, report.total]), media_type="text/csv", headers=headers
        )
    return UsagePublic(
        group_by=group_by,
        since=since,
        until=until,
        rows=[_public(r) for r in report.rows],
        total=_public(report.total),
        storage=_storage(report.storage),
        per_image=_per_image(report.per_image),
        moderation=[ModerationRowPublic(**moderation_fields(r)) for r in report.moderation],
    )
