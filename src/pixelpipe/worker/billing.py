"""The ledger side of a step: each attempt's row, opened before the create call and closed once
(ADR 0007: docs/adr/0007-attempts-before-money.md), and the job's actual cost."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from pixelpipe.jobs.model import Job
from pixelpipe.ledger.base import OPEN_RUN, Charge
from pixelpipe.pricing.price import Price
from pixelpipe.providers.base import ProviderUpdate, RunState
from pixelpipe.worker.context import StepContext


async def open_attempt(ctx: StepContext, job: Job) -> None:
    """The attempt's pending ledger row, at the estimate; free providers cannot bill."""
    estimate = ctx.svc.prices.estimate(job.request, job.provider or "")
    if estimate.amount_micros == 0:
        return
    await ctx.svc.ledger.open_attempt(_charge(job, job.attempt, OPEN_RUN, estimate, {}))


def free_attempt(ctx: StepContext, job: Job) -> bool:
    """``job``'s provider cannot bill its next attempt: no pending row (:func:`open_attempt`)."""
    return ctx.svc.prices.estimate(job.request, job.provider or "").amount_micros == 0


def pending_entry(ctx: StepContext, job: Job, attempt: int) -> dict[str, Any] | None:
    """:func:`open_attempt` of ``job``'s next ``attempt`` as a row that its move to submitting
    inserts (one commit for both; never without the move), where the ledger shares the job
    store's database and the provider can bill; else None (then :func:`open_attempt`)."""
    estimate = ctx.svc.prices.estimate(job.request, job.provider or "")
    if estimate.amount_micros == 0:
        return None
    return ctx.svc.ledger.pending_values(_charge(job, attempt, OPEN_RUN, estimate, {}))


async def record_attempt(
    ctx: StepContext, job: Job, update: ProviderUpdate, attempt: int | None = None
) -> None:
    """The attempt's charge; a run that the provider does not charge (``billable`` False)
    is recorded at $0 when this is called for it (a run the job has left: it did run)."""
    update = timed(ctx, job, update)
    price = ctx.svc.prices.actual(job.request, job.provider or "", update.usage)
    if not update.billable:
        price = Price(0, price.version, "not_charged")
    detail = {"state": str(update.state), "usage": update.usage, **_gpu_detail(ctx, job, update)}
    charge = _charge(
        job, job.attempt if attempt is None else attempt, update.provider_job_id, price, detail
    )
    if await ctx.svc.ledger.record(charge) and "gpu_seconds" in detail:
        ctx.svc.metrics.gpu_seconds_billed(job.provider or "", float(detail["gpu_seconds"]))
        _learn(ctx, job, update)


async def record_end(ctx: StepContext, job: Job, update: ProviderUpdate) -> None:
    """A run that ended without an image: its charge if it is billed, else no row at all."""
    if update.billable:
        await record_attempt(ctx, job, update)
    else:
        await ctx.svc.ledger.close_attempt(job.id, job.attempt, charged=False)


def timed(ctx: StepContext, job: Job, update: ProviderUpdate) -> ProviderUpdate:
    """On a backend priced in GPU time: ``update`` with its GPU-seconds (the run's wall time
    since the job was submitted when the backend gave none) and their source, in its ``usage``
    too (the job keeps that; :func:`actual_cost` reads it). Other providers: as it is."""
    gpu = ctx.svc.prices.gpu
    if gpu is None or not gpu.priced_in_gpu_time(job.provider or ""):
        return update
    seconds, source = update.gpu_seconds, update.gpu_time_source or "server"
    if seconds is None:
        seconds, source = max(0.0, time.time() - (job.submitted_at or job.created_at)), "wall"
    usage = {**update.usage, "gpu_seconds": seconds, "gpu_time_source": source}
    return dataclasses.replace(update, gpu_seconds=seconds, gpu_time_source=source, usage=usage)


def _gpu_detail(ctx: StepContext, job: Job, update: ProviderUpdate) -> dict[str, Any]:
    """The ledger entry's GPU time and the rate it was priced at (a backend's runs only)."""
    gpu = ctx.svc.prices.gpu
    provider = job.provider or ""
    if gpu is None or update.gpu_seconds is None or not gpu.priced_in_gpu_time(provider):
        return {}
    rate = gpu.rates.get(provider)
    return {
        "gpu_seconds": update.gpu_seconds,
        "gpu_time_source": update.gpu_time_source,
        "usd_per_gpu_hour": None if rate is None else str(rate),
    }


def _learn(ctx: StepContext, job: Job, update: ProviderUpdate) -> None:
    """A succeeded run's GPU-seconds join its model's history on that backend (estimates)."""
    gpu = ctx.svc.prices.gpu
    if gpu is not None and update.state is RunState.SUCCEEDED and update.gpu_seconds is not None:
        gpu.history.add(job.provider or "", job.model, update.gpu_seconds)


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
