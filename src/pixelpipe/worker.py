"""Stages 8–12 as short, idempotent steps over a leased job row.

``run_step`` looks at the job's status and does one thing: submit (queued/submitting), poll
(waiting), or fetch+store (fetching/storing). Each step ends with the row in a new state and, if
not terminal, a ``next_run_at``; a crash anywhere leaves a row that the next claim resumes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pixelpipe.errors import (
    DatabaseUnavailable,
    InternalStepError,
    OutputFetchError,
    PixelpipeError,
    ProviderAuthError,
    ProviderContentRejected,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderRateLimited,
    ProviderUnavailable,
)
from pixelpipe.fetch import (
    VerifiedImage,
    fetch_output,
    is_own_thumbnail,
    thumbnail,
    to_format,
    verify_image,
    verify_image_async,
)
from pixelpipe.jobs.model import ImageRecord, Job, JobStatus
from pixelpipe.key import CONTENT_TYPES, storage_key, thumbnail_key
from pixelpipe.ledger.base import OPEN_RUN, Charge, Price
from pixelpipe.providers.base import (
    FindsLostRuns,
    Output,
    ProviderRequest,
    ProviderUpdate,
    RunState,
)
from pixelpipe.providers.run_tag import RunRef, run_webhook_url
from pixelpipe.retry import retry_delay_s
from pixelpipe.services import Services

log = logging.getLogger("pixelpipe.worker")
POLL_MIN_S = 0.25
POLL_MAX_S = 10.0
# outputs this small (a 256x256 WebP is ~10 KB) are verified and thumbnailed on the event loop:
# ~0.2 ms of Pillow work, less than a worker-thread round trip costs
INLINE_IMAGE_BYTES = 16 * 1024
_S = JobStatus


def provider_request(svc: Services, job: Job) -> ProviderRequest:
    provider = svc.providers[job.provider or ""]
    spec = svc.catalog.get(job.model)
    webhook = None
    if svc.settings.public_url and provider.supports_webhooks:
        base = f"{svc.settings.public_url.rstrip('/')}/v1/webhooks/{provider.name}"
        run = RunRef(job.id, job.attempt)
        webhook = run_webhook_url(base, provider.name, run, svc.settings.signing_key())
    return ProviderRequest(
        job_id=job.id,
        attempt=job.attempt,
        request=job.request,
        model_id=spec.provider_ids[provider.name],
        webhook_url=webhook,
    )


async def cancel_run(svc: Services, job: Job, provider_job_id: str) -> None:
    """Best effort: ask ``job``'s provider to stop a run we no longer need (a canceled job, a run
    superseded by an adopted one). What it already cost stays in the ledger either way."""
    provider = svc.providers.get(job.provider or "")
    if provider is None:
        return
    try:
        await provider.cancel(provider_job_id, provider_request(svc, job))
    except Exception as exc:
        log.info(
            "provider cancel of run %s (job %s) failed: %s",
            provider_job_id,
            job.id,
            type(exc).__name__,
        )


class Worker:
    """Runs one step of one leased job. Stateless apart from the services it was given."""

    def __init__(self, svc: Services, owner: str) -> None:
        self.svc = svc
        self.owner = owner
        self._ended: set[str] = set()  # jobs whose terminal transition (run here) cleared the lease

    async def run_step(self, job: Job) -> None:
        try:
            if job.status in (_S.QUEUED, _S.SUBMITTING):
                await self.submit(job)
            elif job.status is _S.WAITING:
                await self.poll(job)
            elif job.status in (_S.FETCHING, _S.STORING):
                await self.fetch_and_store(job, None)
        except PixelpipeError as exc:
            await self.fail_or_retry(job, exc)
        except (DBAPIError, PoolTimeout) as exc:
            # the database is locked or unreachable: not the provider's fault (no outage mark, no
            # failover); retry the step later (if even this cannot be written, the lease expires)
            log.warning("step for job %s hit a database error: %s", job.id, type(exc).__name__)
            await self.fail_or_retry(
                job, DatabaseUnavailable(f"database error: {exc.__class__.__name__}")
            )
        except Exception as exc:  # a bug: keep the job alive, retry later, log the trace
            log.exception("step failed for job %s", job.id)
            await self.fail_or_retry(
                job, InternalStepError(f"internal error: {type(exc).__name__}")
            )
        finally:
            if job.id in self._ended:
                self._ended.discard(job.id)  # terminal: the lease went with the transition
            else:
                await self.svc.store.release(job.id, self.owner)

    # ---- submit -------------------------------------------------------------------------------
    async def submit(self, job: Job) -> None:
        svc = self.svc
        if job.status is _S.SUBMITTING and job.provider_job_id:
            # crashed after the provider accepted: never submit twice, ask for its state
            moved = await svc.store.transition(job.id, _S.SUBMITTING, _S.WAITING, owner=self.owner)
            if moved is not None:
                await self.poll(moved)
            return
        if job.status is _S.SUBMITTING:
            # interrupted mid-submit (crash, lost lease) before the provider's answer was saved
            if (found := await self._find_lost_run(job)) is not None:
                await self.apply(job, found)  # resumed on the run it made: no second run
                return
            # as ambiguous as a read timeout; go round again (see _retry on ambiguous errors).
            # The attempt may have started a run: it stays in the ledger as unconfirmed, and its
            # completion webhook, if it comes, names the attempt and is adopted (webhooks.py)
            await svc.ledger.close_attempt(job.id, job.attempt, charged=None)
            await svc.store.transition(
                job.id,
                _S.SUBMITTING,
                _S.QUEUED,
                owner=self.owner,
                event={"recovered": "submit interrupted; submitting again"},
                next_run_at=time.time(),
            )
            return
        if await self._wait_for_gate(job):
            return
        attempt = job.attempt + 1
        moved = await svc.store.transition(
            job.id,
            job.status,
            _S.SUBMITTING,
            owner=self.owner,
            attempt=attempt,
            submitted_at=job.submitted_at or time.time(),
        )
        if moved is None:
            return
        provider = svc.providers[moved.provider or ""]
        svc.metrics.submissions.labels(provider.name).inc()
        await self._open_attempt(moved)  # in the ledger before money can be spent
        update = await provider.submit(provider_request(svc, moved))
        await self.apply(moved, update)

    async def _open_attempt(self, job: Job) -> None:
        """The attempt's pending ledger row, at the estimate; free providers cannot bill."""
        estimate = self.svc.prices.estimate(job.request, job.provider or "")
        if estimate.amount_micros == 0:
            return
        await self.svc.ledger.open_attempt(self._charge(job, job.attempt, OPEN_RUN, estimate, {}))

    async def _find_lost_run(self, job: Job) -> ProviderUpdate | None:
        """Ask the provider for the run an interrupted submit made, where it can list runs."""
        provider = self.svc.providers.get(job.provider or "")
        if not isinstance(provider, FindsLostRuns):
            return None
        try:
            found = await provider.find_run(provider_request(self.svc, job), job.updated_at)
        except PixelpipeError as exc:  # cannot tell: treated as lost, as before
            log.info("looking up job %s's lost run failed: %s", job.id, exc.code)
            return None
        if found is not None:
            log.info("job %s: interrupted submit resumed on run %s", job.id, found.provider_job_id)
        return found

    async def _wait_for_gate(self, job: Job) -> bool:
        """True when the job's provider is paused after a 429 and the job was rescheduled.

        A pause is not a failed attempt: the job moves to another available provider of its
        model right away, or waits until the pause ends, without spending one of its attempts.
        Outage marks only steer the choice of provider for new jobs; they never block a submit.
        """
        svc = self.svc
        name = job.provider or ""
        wait = svc.gate.paused_for(name)
        if wait <= 0:
            return False
        event: dict[str, Any] = {
            "retrying": True,
            "error": {
                "code": ProviderRateLimited.code,
                "detail": f"{name} is paused for {wait:.1f} s after a rate limit (Retry-After)",
            },
        }
        alt = svc.gate.choose(svc.catalog.get(job.model), preferred=None, exclude=name)
        fields: dict[str, Any]
        if alt != name and svc.gate.available(alt):
            event |= {"retry_in_s": 0.0, "failover": {"from": name, "to": alt}}
            fields = {"provider": alt, "next_run_at": time.time()}
        else:
            delay = wait + random.uniform(0.0, 0.1 * wait + 0.05)  # do not all wake at once
            event["retry_in_s"] = round(delay, 2)
            fields = {"next_run_at": time.time() + delay}
        await svc.store.update(job.id, owner=self.owner, **fields)
        await svc.store.add_event(job.id, "retry", event)
        return True

    # ---- poll ---------------------------------------------------------------------------------
    async def poll(self, job: Job) -> None:
        if not job.provider_job_id:
            raise ProviderJobLost("the job has no provider run to poll")
        provider = self.svc.providers[job.provider or ""]
        try:
            update = await provider.poll(job.provider_job_id, provider_request(self.svc, job))
        except PixelpipeError as exc:
            if isinstance(exc, ProviderJobLost) or not (
                exc.retryable or exc.extra.get("transient")
            ):
                raise
            await self._poll_later(job, exc)
            return
        await self.apply(job, update)

    async def _poll_later(self, job: Job, exc: PixelpipeError) -> None:
        """The status call failed (429, 5xx, timeout): ask again later; the run is still ours.

        Retrying by resubmitting would start (and pay for) a second run, so a failed poll never
        spends an attempt; the job's overall deadline bounds how long polling may go on.
        """
        svc = self.svc
        svc.metrics.provider_errors.labels(job.provider or "", exc.code).inc()
        if isinstance(exc, ProviderRateLimited) and job.provider:
            svc.gate.pause(job.provider, float(exc.retry_after or 1.0))
        errors = int(job.provider_state.get("poll_errors") or 0) + 1
        delay = retry_delay_s(exc, errors)
        await svc.store.update(
            job.id,
            owner=self.owner,
            next_run_at=time.time() + delay,
            provider_state={**job.provider_state, "poll_errors": errors},
        )
        event = {
            "retrying": True,
            "polling": True,
            "error": {"code": exc.code, "detail": exc.detail},
            "retry_in_s": round(delay, 2),
        }
        await svc.store.add_event(job.id, "retry", event)

    # ---- a provider update (from submit, poll or a webhook) -----------------------------------
    async def apply(self, job: Job, update: ProviderUpdate) -> None:
        if update.state is RunState.SUCCEEDED:
            moved = await self.accept_success(job, update)
            if moved is not None:
                await self.fetch_and_store(moved, update)
        elif update.state is RunState.FAILED:
            await self._record_end(job, update)
            raise update.error or ProviderJobLost("the provider reported a failure")
        elif update.state is RunState.CANCELED:
            await self._record_end(job, update)
            canceled, _ = await asyncio.gather(  # one group commit: no reservation outlives it
                self.svc.store.transition(
                    job.id,
                    job.status,
                    _S.CANCELED,
                    error_code="canceled",
                    error_detail="canceled at the provider",
                ),
                self.svc.ledger.release(job.id),
            )
            if canceled is not None:
                await self._notify(canceled)
        else:
            await self._wait(job, update)

    async def _wait(self, job: Job, update: ProviderUpdate) -> None:
        svc = self.svc
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
        progress = update.progress or state.get("progress") or {}
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
        if update.progress and update.progress != job.provider_state.get("progress"):
            await svc.store.add_event(job.id, "progress", update.progress)

    # ---- fetch + verify + store ---------------------------------------------------------------
    async def accept_success(
        self, job: Job, update: ProviderUpdate, *, attempt: int | None = None
    ) -> Job | None:
        """Bill the attempt (once) and persist the outputs: from here on we never pay again.

        ``attempt``: the attempt whose run produced ``update`` (an adopted orphan's), if not the
        job's current one."""
        billed = self.record_attempt(job, update, attempt)  # same group commit as transition
        saved = {
            **job.provider_state,
            "outputs": _serialisable(list(update.outputs)),
            "usage": update.usage,
        }
        moved = self.svc.store.transition(
            job.id,
            job.status,
            _S.FETCHING,
            provider_state=saved,
            next_run_at=time.time(),
            provider=job.provider,  # an adopted run's provider, when it is another's
            provider_job_id=update.provider_job_id,
            revised_prompt=update.revised_prompt or job.revised_prompt,
        )
        _, result = await asyncio.gather(billed, moved)
        return result

    async def fetch_and_store(self, job: Job, update: ProviderUpdate | None) -> None:
        svc = self.svc
        if update is None and (stored := await self._already_stored(job)) is not None:
            # a previous run of this step uploaded the image, then crashed (or lost its database):
            # finish from our own copy — the provider's URL may have expired meanwhile
            await self._store(job, *stored)
            return
        outputs = list(update.outputs) if update else _saved_outputs(job)
        if not outputs:
            raise OutputFetchError("the provider reported success without an image")
        policy = svc.fetch_policies.get(job.provider or "")  # every provider has one (bootstrap)
        raw = await fetch_output(outputs[0], policy, svc.http) if policy else outputs[0].data
        if raw is None:
            raise OutputFetchError("the provider output could not be read")
        if len(raw) <= INLINE_IMAGE_BYTES:  # a thread hop would cost more than the work
            image, thumb = _prepare_image(raw, job.request.format)
        else:
            image, thumb = await asyncio.to_thread(_prepare_image, raw, job.request.format)
        await self._store(job, image, thumb)

    async def _already_stored(self, job: Job) -> tuple[Any, Any] | None:
        """The verified image and thumbnail this job's content key already has in storage."""
        svc = self.svc
        key = storage_key(job.content_key, job.model, job.request.format)
        tkey = thumbnail_key(job.content_key, job.model)
        try:
            if await svc.storage.head(key) is None:
                return None
            image = await verify_image_async(await svc.storage.get(key))
            if is_own_thumbnail(image):  # there is no separate thumbnail object
                return image, image
            if await svc.storage.head(tkey) is None:
                return None
            return image, await verify_image_async(await svc.storage.get(tkey))
        except PixelpipeError:  # unreadable or not an image after all: fetch as usual
            return None

    async def _store(self, job: Job, image: Any, thumb: Any) -> None:
        svc = self.svc
        key = storage_key(job.content_key, job.model, job.request.format)
        # a small WebP is its own thumbnail (fetch.transcode.thumbnail): one object, one put
        tkey = key if thumb is image else thumbnail_key(job.content_key, job.model)
        puts = [svc.storage.put(key, image.data, content_type=CONTENT_TYPES[job.request.format])]
        if tkey != key:
            puts.append(svc.storage.put(tkey, thumb.data, content_type="image/webp"))
        # the puts are idempotent (content-addressed), so they run while the row says "storing"
        moved, *_ = await asyncio.gather(
            svc.store.transition(job.id, _S.FETCHING, _S.STORING)
            if job.status is _S.FETCHING
            else _same(job),
            *puts,
        )
        if moved is None:
            return
        svc.metrics.stored_bytes.inc(len(image.data))
        now = time.time()
        indexed = svc.store.save_image(
            ImageRecord(
                job.content_key,
                key,
                CONTENT_TYPES[job.request.format],
                image.width,
                image.height,
                len(image.data),
                job.model,
                job.id,
                now,
                tkey,
            )
        )
        cost, status = await self._actual_cost(job)
        # the image index, the terminal transition and the reservation's end share one group
        # commit (in that order), so a crash or a locked database cannot leave a finished job
        # without its index entry or holding budget
        _, done, _ = await asyncio.gather(
            indexed,
            svc.store.transition(
                job.id,
                _S.STORING,
                _S.SUCCEEDED,
                storage_key=key,
                thumb_key=tkey,
                content_type=CONTENT_TYPES[job.request.format],
                width=image.width,
                height=image.height,
                bytes=len(image.data),
                cost_micros=cost,
                cost_status=status,
                error_code=None,
                error_detail=None,
                provider_state=_without_inline_data(job.provider_state),
            ),
            svc.ledger.settle(job.id),
        )
        if done is not None:
            await self._notify(done)

    async def _actual_cost(self, job: Job) -> tuple[int | None, str]:
        price = self.svc.prices.actual(
            job.request, job.provider or "", job.provider_state.get("usage") or {}
        )
        if price.amount_micros is None:
            return None, "unpriced"
        return price.amount_micros, "free" if price.amount_micros == 0 else "priced"

    async def _record_end(self, job: Job, update: ProviderUpdate) -> None:
        """A run that ended without an image: its charge if it is billed, else no row at all."""
        if update.billable:
            await self.record_attempt(job, update)
        else:
            await self.svc.ledger.close_attempt(job.id, job.attempt, charged=False)

    async def record_attempt(
        self, job: Job, update: ProviderUpdate, attempt: int | None = None
    ) -> None:
        """The attempt's charge; a run that the provider does not charge (``billable`` False)
        is recorded at $0 when this is called for it (a run the job has left: it did run)."""
        price = self.svc.prices.actual(job.request, job.provider or "", update.usage)
        if not update.billable:
            price = Price(0, price.version, "not_charged")
        detail = {"state": str(update.state), "usage": update.usage}
        charge = self._charge(
            job, job.attempt if attempt is None else attempt, update.provider_job_id, price, detail
        )
        await self.svc.ledger.record(charge)

    @staticmethod
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

    async def _notify(self, job: Job) -> None:
        if job.status.terminal:
            self._ended.add(job.id)
        self.svc.metrics.finished.labels(str(job.status)).inc()
        hook = getattr(self.svc, "completion_hooks", None)
        if hook is not None:
            await hook.job_finished(job)

    # ---- failure handling ---------------------------------------------------------------------
    async def fail_or_retry(self, job: Job, exc: PixelpipeError) -> None:
        svc = self.svc
        svc.metrics.provider_errors.labels(job.provider or "", exc.code).inc()
        current = await svc.store.get(job.id)
        if current is None or current.status.terminal:
            return
        transient = exc.retryable or bool(exc.extra.get("transient"))
        if isinstance(exc, ProviderRateLimited) and current.provider:
            svc.gate.pause(current.provider, float(exc.retry_after or 1.0))
        if isinstance(exc, ProviderUnavailable) and current.provider:
            svc.gate.mark_outage(current.provider, 10.0)
        if transient and _may_retry(current, exc):
            await self._retry(current, exc)
            return
        await self._leave_attempt(current, exc)
        done, _ = await asyncio.gather(  # one group commit (see _store)
            svc.store.transition(
                job.id, current.status, _S.FAILED, error_code=exc.code, error_detail=exc.detail
            ),
            svc.ledger.release(job.id),
        )
        if done is not None:
            await self._notify(done)

    async def _retry(self, job: Job, exc: PixelpipeError) -> None:
        svc = self.svc
        delay = retry_delay_s(exc, job.attempt)
        event: dict[str, Any] = {
            "retrying": True,
            "error": {"code": exc.code, "detail": exc.detail},
            "retry_in_s": round(delay, 2),
        }
        if job.status in (_S.FETCHING, _S.STORING):
            # the provider already produced the image: fetch again, never pay again
            errors = int(job.provider_state.get("fetch_errors") or 0) + 1
            delay = retry_delay_s(exc, errors)
            event["retry_in_s"] = round(delay, 2)
            await svc.store.update(
                job.id,
                next_run_at=time.time() + delay,
                provider_state={**job.provider_state, "fetch_errors": errors},
            )
            await svc.store.add_event(job.id, "retry", event)
            return
        if job.status is _S.QUEUED or (job.provider_job_id and _ours(exc)):
            # nothing was sent yet, or our side failed while the provider holds a run: reschedule
            # in place (no transition, no attempt spent, the provider run kept)
            await svc.store.update(
                job.id,
                next_run_at=time.time() + delay,
                error_code=exc.code,
                error_detail=exc.detail,
            )
            await svc.store.add_event(job.id, "retry", event)
            return
        await self._leave_attempt(job, exc)  # the job goes round again: this attempt is over
        fields: dict[str, Any] = {}
        if _refused(job, exc):
            # a 429 on submit ran nothing and cost nothing: it gives the attempt back (the job's
            # deadline bounds a long storm); its own count drives the backoff when the provider
            # sent no Retry-After
            refusals = int(job.provider_state.get("rate_limited") or 0) + 1
            delay = retry_delay_s(exc, refusals)
            fields["attempt"] = max(0, job.attempt - 1)
            fields["provider_state"] = {**job.provider_state, "rate_limited": refusals}
        spec = svc.catalog.get(job.model)
        # An ambiguous failure (the request was sent, the answer lost) may have started a run that
        # the provider bills. Going round again risks paying twice, but failing would drop a job
        # that most likely did not run; so retry, on the same provider (it took the request: it
        # is slow, not down, and a second provider must not run it too), and say so in the event.
        # A webhook from the orphaned run, if any, is acknowledged as an unknown run.
        ambiguous = bool(exc.extra.get("ambiguous"))
        failover = isinstance(exc, ProviderUnavailable | ProviderRateLimited) and not ambiguous
        provider = (
            svc.gate.choose(spec, preferred=None, exclude=job.provider)
            if failover
            else job.provider
        )
        if provider != job.provider and svc.gate.paused_for(provider or "") > 0:
            provider = job.provider  # the other is paused by a 429: back off where we are
        if ambiguous:
            event["ambiguous"] = True
        if provider != job.provider:
            event["failover"] = {"from": job.provider, "to": provider}
            delay = min(delay, 0.5)  # a paused target is waited for in submit, not here
        event["retry_in_s"] = round(delay, 2)
        moved = await svc.store.transition(
            job.id,
            job.status,
            _S.QUEUED,
            event=event,
            next_run_at=time.time() + delay,
            provider=provider,
            provider_job_id=None,
            webhook_deadline_at=None,
            error_code=exc.code,
            error_detail=exc.detail,
            **fields,
        )
        if moved is not None:
            await svc.store.add_event(job.id, "retry", {**event, "attempt": job.attempt})

    async def _leave_attempt(self, job: Job, exc: PixelpipeError) -> None:
        """The job leaves its current attempt on ``exc``: a provider's refusal ran nothing (its
        pending row goes); anything else — an answer lost after sending, a run the provider lost,
        an answer we could not read — may have started a billed run (unconfirmed). A charge
        recorded for the attempt already is kept either way."""
        if job.status not in (_S.SUBMITTING, _S.WAITING):
            return  # queued: not sent yet; fetching/storing: billed when the run succeeded
        charged = False if _refused_by_provider(exc) else None
        await self.svc.ledger.close_attempt(job.id, job.attempt, charged=charged)


def _refused_by_provider(exc: PixelpipeError) -> bool:
    """The provider's own answer says nothing ran: a 429, a 4xx (validation, auth, content policy
    at submit), a 5xx or a connection that never reached it (``billable=False``)."""
    if exc.extra.get("ambiguous") or _ours(exc):
        return False
    refusals = (
        ProviderRateLimited | ProviderInvalidInput | ProviderAuthError | ProviderContentRejected
    )
    return isinstance(exc, refusals) or exc.extra.get("billable") is False


def _prepare_image(raw: bytes, fmt: str) -> tuple[VerifiedImage, VerifiedImage]:
    """Verify, convert and thumbnail in one worker-thread hop (all CPU-bound Pillow work)."""
    image = to_format(verify_image(raw), fmt)
    return image, thumbnail(image)


async def _same(job: Job) -> Job:
    return job


def _without_inline_data(state: dict[str, Any]) -> dict[str, Any]:
    """Once stored, inline outputs (base64) are dead weight in the row: keep only their shape."""
    outputs = [{k: v for k, v in o.items() if k != "data_b64"} for o in state.get("outputs") or []]
    return {**state, "outputs": outputs}


def _ours(exc: PixelpipeError) -> bool:
    """Our side failed (database, a bug), not the provider: a run it holds must be kept, since
    submitting again could make the provider bill twice."""
    return isinstance(exc, DatabaseUnavailable | InternalStepError)


def _refused(job: Job, exc: PixelpipeError) -> bool:
    """A provider's 429 to the submit call: nothing ran, so no attempt was spent."""
    return isinstance(exc, ProviderRateLimited) and job.status is _S.SUBMITTING


def _may_retry(job: Job, exc: PixelpipeError) -> bool:
    if job.status in (_S.FETCHING, _S.STORING):
        return int(job.provider_state.get("fetch_errors") or 0) < job.max_attempts
    return job.attempt < job.max_attempts or _refused(job, exc)


def _serialisable(outputs: list[Output]) -> list[dict[str, Any]]:
    return [
        {"url": o.url, "content_type": o.content_type}
        if o.url
        else {"data_b64": base64.b64encode(o.data or b"").decode(), "content_type": o.content_type}
        for o in outputs
    ]


def _saved_outputs(job: Job) -> list[Output]:
    saved = job.provider_state.get("outputs") or []
    return [
        Output(
            url=o.get("url"),
            data=base64.b64decode(o["data_b64"]) if o.get("data_b64") else None,
            content_type=o.get("content_type"),
        )
        for o in saved
    ]
