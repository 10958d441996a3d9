"""Stage 8: submit the job to its provider — once per attempt, the attempt in the ledger first —
and resume an interrupted submit without starting a second run."""

from __future__ import annotations

import logging
import time
from typing import Any

from pixelpipe.errors import PixelpipeError
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.store import Opening
from pixelpipe.providers.base import FindsLostRuns, NamesItsRuns, ProviderUpdate
from pixelpipe.worker.billing import free_attempt, open_attempt, pending_entry
from pixelpipe.worker.context import StepContext
from pixelpipe.worker.failures import LiveGate, wait_for_gate
from pixelpipe.worker.policy import Next, decide
from pixelpipe.worker.poll import apply, poll
from pixelpipe.worker.progress import submit_watching
from pixelpipe.worker.provider_run import provider_request
from pixelpipe.worker.slots import start_submit

log = logging.getLogger("pixelpipe.worker")
RESUME_POLL_S = 5.0  # a resumed run whose webhook is awaited is looked at again this often
_S = JobStatus


async def opening(ctx: StepContext, job: Job) -> Opening | None:
    """The move to submitting that ``job``'s admission may make in its own commit, for a job
    handed over in memory to this worker (leased here, its step starting at once): what
    :func:`submit` would do first, decided now — a hosted provider (a backend's slot may put the
    job in line instead), not paused, its gate open (:func:`wait_for_gate`), and the attempt's
    pending ledger row in the same transaction (or none needed: a free provider). None
    otherwise: the job is inserted queued and its step decides, as before.

    The attempt is then in the ledger before money can be spent, as always; a crash between the
    commit and the provider's call leaves it as a crash mid-submit does
    (:func:`_resume_interrupted`: looked for, else closed unconfirmed and run again)."""
    svc, provider = ctx.svc, job.provider or ""
    if provider in svc.slots or provider not in svc.providers:
        return None
    if decide(job, None, LiveGate(svc)).next is not Next.SUBMIT:
        return None
    if await svc.store.is_paused(provider):
        return None
    fields = _next_attempt(job)
    entry = pending_entry(ctx, job, fields["attempt"])
    if entry is None and not free_attempt(ctx, job):
        return None  # a ledger with books of its own: the attempt needs a write of its own
    return Opening(fields=fields, entry=entry)


def _next_attempt(job: Job) -> dict[str, Any]:
    """The columns of ``job``'s move to submitting: its next attempt, and when it was first
    submitted."""
    return {"attempt": job.attempt + 1, "submitted_at": job.submitted_at or time.time()}


async def submit(ctx: StepContext, job: Job) -> None:
    svc = ctx.svc
    if job.id in ctx.opened:
        ctx.opened.discard(job.id)
        if job.status is _S.SUBMITTING and not job.provider_job_id:
            await _send(ctx, job)  # its admission opened the attempt: send it now
            return
    if job.status is _S.SUBMITTING and job.provider_job_id:
        # crashed after the provider accepted: never submit twice, ask for its state
        moved = await svc.store.transition(job.id, _S.SUBMITTING, _S.WAITING, owner=ctx.owner)
        if moved is not None:
            await poll(ctx, moved)
        return
    if job.status is _S.SUBMITTING:
        await _resume_interrupted(ctx, job)
        return
    if await wait_for_gate(ctx, job):
        return
    fields = _next_attempt(job)
    # in the ledger before money can be spent: with the move to submitting (one commit) for a
    # hosted provider — a backend's slot may put the job in line instead — else right after it
    entry = None if job.provider in svc.slots else pending_entry(ctx, job, fields["attempt"])
    with_entry = {} if entry is None else {"entry": entry}
    moved = await start_submit(ctx, job, **fields, **with_entry)
    if moved is None:  # waits for a slot of its backend, or moved on
        return
    if entry is None:
        await open_attempt(ctx, moved)
    await _send(ctx, moved)


async def _send(ctx: StepContext, job: Job) -> None:
    """Call the provider for ``job`` (submitting, its attempt in the ledger) and act on it."""
    provider = ctx.svc.providers[job.provider or ""]
    ctx.svc.metrics.submissions.labels(provider.name).inc()
    update = await submit_watching(ctx, provider, job)
    await apply(ctx, job, update)


async def _resume_interrupted(ctx: StepContext, job: Job) -> None:
    """Interrupted mid-submit (crash, lost lease) before the provider's answer was saved."""
    if (found := await _find_lost_run(ctx, job)) is not None:
        await apply(ctx, job, found)  # resumed on the run it made: no second run
        return
    if await _wait_for_its_webhook(ctx, job):
        return
    # as ambiguous as a read timeout; go round again (see policy: ambiguous failures).
    # The attempt may have started a run: it stays in the ledger as unconfirmed, and its
    # completion webhook, if it comes, names the attempt and is adopted (webhooks.py)
    await ctx.svc.ledger.close_attempt(job.id, job.attempt, charged=None)
    await ctx.svc.store.transition(
        job.id,
        _S.SUBMITTING,
        _S.QUEUED,
        owner=ctx.owner,
        event={"recovered": "submit interrupted; submitting again"},
        next_run_at=time.time(),
    )


async def _wait_for_its_webhook(ctx: StepContext, job: Job) -> bool:
    """Not running, but the run may have ended while we were down (cog forgets a finished
    prediction, and retries its completion webhook for minutes): where the provider's run id is
    ours and a webhook was asked for, wait for it on that id — ``poll`` says when to give up
    (cog: :data:`~pixelpipe.providers.cog.client.GONE_GRACE_S`) — rather than run it again."""
    provider = ctx.svc.providers.get(job.provider or "")
    req = provider_request(ctx.svc, job)
    if not isinstance(provider, NamesItsRuns) or not req.webhook_url:
        return False
    moved = await ctx.svc.store.transition(
        job.id,
        _S.SUBMITTING,
        _S.WAITING,
        owner=ctx.owner,
        provider_job_id=provider.run_id(req),
        next_run_at=time.time() + RESUME_POLL_S,
        event={"recovered": "submit interrupted; waiting for its run's webhook"},
    )
    return moved is not None


async def _find_lost_run(ctx: StepContext, job: Job) -> ProviderUpdate | None:
    """Ask the provider for the run an interrupted submit made, where it can list runs."""
    provider = ctx.svc.providers.get(job.provider or "")
    if not isinstance(provider, FindsLostRuns):
        return None
    try:
        found = await provider.find_run(provider_request(ctx.svc, job), job.updated_at)
    except PixelpipeError as exc:  # cannot tell: treated as lost, as before
        log.info("looking up job %s's lost run failed: %s", job.id, exc.code)
        return None
    if found is not None:
        log.info("job %s: interrupted submit resumed on run %s", job.id, found.provider_job_id)
    return found
