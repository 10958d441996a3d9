"""Stage 9: follow the provider's run — poll it, and apply what it says (from a submit, a poll or
a webhook): wait on, take the image, or end the attempt."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pixelpipe.errors import PixelpipeError, ProviderJobLost
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.providers.base import ProviderUpdate, RunState
from pixelpipe.worker.billing import record_end
from pixelpipe.worker.context import StepContext
from pixelpipe.worker.failures import poll_later
from pixelpipe.worker.moderation import block, provider_blocked
from pixelpipe.worker.output import accept_and_store
from pixelpipe.worker.policy import polls_again
from pixelpipe.worker.provider_run import provider_request

POLL_MIN_S = 0.25
POLL_MAX_S = 10.0
PREVIEW_EVERY_S = 0.5  # a job's live previews: at most two a second (docs/streaming.md)
_S = JobStatus


async def poll(ctx: StepContext, job: Job) -> None:
    if not job.provider_job_id:
        raise ProviderJobLost("the job has no provider run to poll")
    provider = ctx.svc.providers[job.provider or ""]
    try:
        update = await provider.poll(job.provider_job_id, provider_request(ctx.svc, job))
    except PixelpipeError as exc:
        if not polls_again(exc):
            raise  # a lost run or a permanent error: the step failed
        await poll_later(ctx, job, exc)
        return
    await apply(ctx, job, update)


async def apply(ctx: StepContext, job: Job, update: ProviderUpdate) -> None:
    if update.state is RunState.SUCCEEDED:
        await accept_and_store(ctx, job, update)
    elif update.state is RunState.FAILED:
        await record_end(ctx, job, update)
        if (hits := provider_blocked(update)) is not None:  # the provider's NSFW filter
            await block(ctx, job, None, hits, "provider", paid=update.billable)  # raises
        raise update.error or ProviderJobLost("the provider reported a failure")
    elif update.state is RunState.CANCELED:
        await record_end(ctx, job, update)
        canceled, _ = await asyncio.gather(  # one group commit: no reservation outlives it
            ctx.svc.store.transition(
                job.id,
                job.status,
                _S.CANCELED,
                error_code="canceled",
                error_detail="canceled at the provider",
            ),
            ctx.svc.ledger.release(job.id),
        )
        if canceled is not None:
            await ctx.finished(canceled)
    else:
        await _wait(ctx, job, update)


async def _wait(ctx: StepContext, job: Job, update: ProviderUpdate) -> None:
    svc = ctx.svc
    now = time.time()
    webhook = provider_request(svc, job).webhook_url
    deadline = job.webhook_deadline_at
    if webhook and deadline is None:  # just submitted: the webhook has until then
        deadline = now + svc.settings.webhook_deadline_s
    if webhook and deadline is not None and deadline > now:
        # the sweeper polls once the webhook is overdue; this later wake-up is only the
        # safety net of a deployment whose sweeper is not running
        nxt = deadline + max(1.0, 2 * svc.settings.sweep_interval_s)
    else:
        deadline = None  # no webhook, or it is overdue: poll on our own schedule from now on
        nxt = now + min(POLL_MAX_S, max(POLL_MIN_S, update.poll_after_s or 1.0))
    state = {k: v for k, v in job.provider_state.items() if k != "poll_errors"}
    shown = _rate_limited(update.progress, state, now)
    progress = shown or state.get("progress") or {}
    fields: dict[str, Any] = {
        "provider_job_id": update.provider_job_id,
        "next_run_at": nxt,
        "webhook_deadline_at": deadline,
        "provider_state": {**state, "progress": progress},
    }
    if job.status is _S.WAITING:
        await svc.store.update(job.id, **fields)
    else:
        await svc.store.transition(job.id, job.status, _S.WAITING, **fields)
    if shown and shown != job.provider_state.get("progress"):
        await svc.store.add_event(job.id, "progress", shown)


def _rate_limited(
    progress: dict[str, Any] | None, state: dict[str, Any], now: float
) -> dict[str, Any] | None:
    """``progress`` as the job shows it: its ``preview`` left out when the job's last one is
    under :data:`PREVIEW_EVERY_S` old — at most two previews a second per job, whatever the
    provider's webhooks or polls bring (``state`` keeps when the last one was shown)."""
    if not progress or "preview" not in progress:
        return progress
    if now - float(state.get("preview_at") or 0.0) < PREVIEW_EVERY_S:
        return {k: v for k, v in progress.items() if k != "preview"}
    state["preview_at"] = now
    return progress
