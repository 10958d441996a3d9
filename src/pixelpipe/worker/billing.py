"""The ledger side of a step: each attempt's row, opened before the create call and closed once
(ADR 0007: docs/adr/0007-attempts-before-money.md), and the job's actual cost."""

from __future__ import annotations

from typing import Any

from pixelpipe.jobs.model import Job
from pixelpipe.ledger.base import OPEN_RUN, Charge
from pixelpipe.pricing.price import Price
from pixelpipe.providers.base import ProviderUpdate
from pixelpipe.worker.context import StepContext


async def open_attempt(ctx: StepContext, job: Job) -> None:
    """The attempt's pending ledger row, at the estimate; free providers cannot bill."""
    estimate = ctx.svc.prices.estimate(job.request, job.provider or "")
    if estimate.amount_micros == 0:
        return
    await ctx.svc.ledger.open_attempt(_charge(job, job.attempt, OPEN_RUN, estimate, {}))


async def record_attempt(
    ctx: StepContext, job: Job, update: ProviderUpdate, attempt: int | None = None
) -> None:
    """The attempt's charge; a run that the provider does not charge (``billable`` False)
    is recorded at $0 when this is called for it (a run the job has left: it did run)."""
    price = ctx.svc.prices.actual(job.request, job.provider or "", update.usage)
    if not update.billable:
        price = Price(0, price.version, "not_charged")
    detail = {"state": str(update.state), "usage": update.usage}
    charge = _charge(
        job, job.attempt if attempt is None else attempt, update.provider_job_id, price, detail
    )
    await ctx.svc.ledger.record(charge)


async def record_end(ctx: StepContext, job: Job, update: ProviderUpdate) -> None:
    """A run that ended without an image: its charge if it is billed, else no row at all."""
    if update.billable:
        await record_attempt(ctx, job, update)
    else:
        await ctx.svc.ledger.close_attempt(job.id, job.attempt, charged=False)


def actual_cost(ctx: StepContext, job: Job) -> tuple[int | None, str]:
    """The job's cost at the provider's reported usage, and whether it is priced."""
    price = ctx.svc.prices.actual(
        job.request, job.provider or "", job.provider_state.get("usage") or {}
    )
    if price.amount_micros is None:
        return None, "unpriced"
    return price.amount_micros, "free" if price.amount_micros == 0 else "priced"


def _charge(
    job: Job, attempt: int, provider_job_id: str, price: Price, detail: dict[str, Any]
) -> Charge:
    return Charge(
        job_id=job.id,
        attempt=attempt,
        provider=job.provider or "",
        provider_job_id=provider_job_id,
        model=job.model,
        kind="attempt",
        price=price,
        api_key_id=job.api_key_id,
        detail={"size": job.request.size, "quality": job.request.quality, **detail},
    )
