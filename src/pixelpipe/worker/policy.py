"""Retry and failover, in one place: what a job does next after an error, or before a submit.

:func:`decide` is pure: it reads the job, the error and what the provider gate says, and returns a
:class:`Decision`; the worker applies it (:mod:`pixelpipe.worker.failures`: ledger, row, events).

1. **Before a submit**, a provider paused by a 429 is not a failed attempt: the job moves to
   another available provider of its model right away, or waits until the pause ends (with a
   little jitter, so that they do not all wake at once), without spending an attempt. Outage marks
   only steer the choice of provider for new jobs; they never block a submit.
2. **A failed status call** (429, 5xx, timeout) is asked again later: the run is still ours.
   Resubmitting would start (and pay for) a second run, so a failed poll never spends an attempt;
   the job's overall deadline bounds how long polling goes on. A run the provider lost, or a
   permanent error, is a failed step (3).
3. **A failed step** fails the job with the error's code when the error is permanent or the job
   is out of attempts. Otherwise:
   - the image was already produced (fetching/storing): fetch again later, never pay again;
   - nothing was sent yet (queued), or our side failed (database, a bug) while the provider holds
     a run: wait in place (no transition, no attempt spent, the run kept);
   - else the attempt is over and the job is queued again: on another provider after a 5xx or a
     429 (unless that one is paused too), else on the same one after a backoff. A 429 to the
     submit call ran nothing and gives its attempt back. An ambiguous failure (sent, answer lost)
     may have started a billed run: it goes round again on the same provider (it took the request,
     so it is slow, not down, and a second provider must not run it too), and says so.

Every error tells the gate what it learnt: a 429 pauses the provider for its Retry-After, and a
failed step on a provider outage (5xx, unreachable) marks it down for :data:`OUTAGE_S`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from pixelpipe.errors import (
    DatabaseUnavailable,
    InternalStepError,
    PixelpipeError,
    ProviderAuthError,
    ProviderContentRejected,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderRateLimited,
    ProviderUnavailable,
    RateLimited,
)
from pixelpipe.jobs.model import Job, JobStatus

BASE_S = 1.0  # backoff before the first retry (full jitter over base·2^(n-1), capped)
CAP_S = 300.0
OUTAGE_S = 10.0  # how long a provider outage steers new jobs elsewhere
FAILOVER_MAX_DELAY_S = 0.5  # a paused target is waited for before its submit, not here
_S = JobStatus


class GateView(Protocol):
    """What the provider gate says, read (never written) while deciding."""

    def paused_for(self, provider: str) -> float:
        """Seconds left of ``provider``'s pause after a 429 (0 when not paused)."""
        ...

    def available(self, provider: str) -> bool: ...

    def failover_for(self, job: Job) -> str:
        """The provider the job would move to: the first other available one of its model."""
        ...


class Next(Enum):
    SUBMIT = "submit"  # go ahead: submit now
    WAIT = "wait"  # stay in place, run again after ``delay_s``: no transition, no attempt spent
    REQUEUE = "requeue"  # the attempt is over: back to queued, run again after ``delay_s``
    FAIL = "fail"  # give up with the error's code


@dataclass(frozen=True)
class Decision:
    next: Next
    delay_s: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)  # row fields written with the move
    event: dict[str, Any] = field(default_factory=dict)  # the "retry" event (WAIT, REQUEUE)
    close_attempt: bool = False  # the attempt's pending ledger row is closed ...
    charged: bool | None = None  # ... as not charged (False) or unconfirmed (None)
    pause_s: float | None = None  # the gate pauses the job's provider for this long
    outage_s: float | None = None  # the gate marks the job's provider down for this long


SUBMIT = Decision(Next.SUBMIT)


def decide(
    job: Job,
    error: PixelpipeError | None,
    gate: GateView,
    *,
    polling: bool = False,
    rng: random.Random | None = None,
) -> Decision:
    """What ``job`` does next. ``error`` None: it is about to be submitted (rule 1); ``polling``:
    ``error`` came from the provider's status call (rule 2); else a step failed (rule 3)."""
    if error is None:
        return _before_submit(job, gate, rng)
    if polling and polls_again(error):
        return _poll_again(job, error, rng)
    news = _gate_news(job, error)
    if not (transient(error) and _may_retry(job, error)):
        return Decision(Next.FAIL, fields=_error_fields(error), **_leave(job, error), **news)
    if job.status in (_S.FETCHING, _S.STORING):
        return _fetch_again(job, error, rng, news)
    if job.status is _S.QUEUED or (job.provider_job_id and ours(error)):
        return _wait_in_place(job, error, rng, news)
    return _requeue(job, error, gate, rng, news)


def polls_again(error: PixelpipeError) -> bool:
    """A failed status call that is asked again later (rule 2) rather than failing the step."""
    return transient(error) and not isinstance(error, ProviderJobLost)


def transient(error: PixelpipeError) -> bool:
    return error.retryable or bool(error.extra.get("transient"))


def ours(error: PixelpipeError) -> bool:
    """Our side failed (database, a bug), not the provider: a run it holds must be kept, since
    submitting again could make the provider bill twice."""
    return isinstance(error, DatabaseUnavailable | InternalStepError)


def refused_by_provider(error: PixelpipeError) -> bool:
    """The provider's own answer says nothing ran: a 429, a 4xx (validation, auth, content policy
    at submit), a 5xx or a connection that never reached it (``billable=False``)."""
    if error.extra.get("ambiguous") or ours(error):
        return False
    refusals = (
        ProviderRateLimited | ProviderInvalidInput | ProviderAuthError | ProviderContentRejected
    )
    return isinstance(error, refusals) or error.extra.get("billable") is False


def retry_delay_s(error: PixelpipeError, attempt: int, rng: random.Random | None = None) -> float:
    """The provider's Retry-After when it gave one (plus a little jitter), else backoff."""
    hinted = getattr(error, "retry_after", None)
    if isinstance(error, ProviderRateLimited | RateLimited) and hinted:
        return float(hinted) + _uniform(rng, 0, 0.25 * float(hinted) + 0.05)
    return backoff_s(attempt, rng)


def backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): full jitter over base·2^(attempt-1)."""
    ceiling = min(CAP_S, BASE_S * 2 ** max(0, attempt - 1))
    return _uniform(rng, ceiling / 2, ceiling)


# ---- rule 1: before a submit ---------------------------------------------------------------------
def _before_submit(job: Job, gate: GateView, rng: random.Random | None) -> Decision:
    name = job.provider or ""
    wait = gate.paused_for(name)
    if wait <= 0:
        return SUBMIT
    event: dict[str, Any] = {
        "retrying": True,
        "error": {
            "code": ProviderRateLimited.code,
            "detail": f"{name} is paused for {wait:.1f} s after a rate limit (Retry-After)",
        },
    }
    alt = gate.failover_for(job)
    if alt != name and gate.available(alt):
        event |= {"retry_in_s": 0.0, "failover": {"from": name, "to": alt}}
        return Decision(Next.WAIT, 0.0, {"provider": alt}, event)
    delay = wait + _uniform(rng, 0.0, 0.1 * wait + 0.05)  # do not all wake at once
    return Decision(Next.WAIT, delay, {}, event | {"retry_in_s": round(delay, 2)})


# ---- rule 2: a failed status call ----------------------------------------------------------------
def _poll_again(job: Job, error: PixelpipeError, rng: random.Random | None) -> Decision:
    errors = int(job.provider_state.get("poll_errors") or 0) + 1
    delay = retry_delay_s(error, errors, rng)
    event = {
        "retrying": True,
        "polling": True,
        "error": _error(error),
        "retry_in_s": round(delay, 2),
    }
    state = {**job.provider_state, "poll_errors": errors}
    return Decision(Next.WAIT, delay, {"provider_state": state}, event, pause_s=_pause(job, error))


# ---- rule 3: a failed step -----------------------------------------------------------------------
def _fetch_again(
    job: Job, error: PixelpipeError, rng: random.Random | None, news: dict[str, Any]
) -> Decision:
    """The provider already produced the image: fetch again, never pay again."""
    errors = int(job.provider_state.get("fetch_errors") or 0) + 1
    delay = retry_delay_s(error, errors, rng)
    state = {**job.provider_state, "fetch_errors": errors}
    return Decision(Next.WAIT, delay, {"provider_state": state}, _retry_event(error, delay), **news)


def _wait_in_place(
    job: Job, error: PixelpipeError, rng: random.Random | None, news: dict[str, Any]
) -> Decision:
    """Nothing was sent yet, or our side failed while the provider holds a run: keep it."""
    delay = retry_delay_s(error, job.attempt, rng)
    fields = _error_fields(error)
    return Decision(Next.WAIT, delay, fields, _retry_event(error, delay), **news)


def _requeue(
    job: Job,
    error: PixelpipeError,
    gate: GateView,
    rng: random.Random | None,
    news: dict[str, Any],
) -> Decision:
    delay = retry_delay_s(error, job.attempt, rng)
    fields: dict[str, Any] = {}
    if _refused(job, error):
        # a 429 on submit ran nothing and cost nothing: it gives the attempt back (the job's
        # deadline bounds a long storm); its own count drives the backoff when the provider
        # sent no Retry-After
        refusals = int(job.provider_state.get("rate_limited") or 0) + 1
        delay = retry_delay_s(error, refusals, rng)
        fields["attempt"] = max(0, job.attempt - 1)
        fields["provider_state"] = {**job.provider_state, "rate_limited": refusals}
    ambiguous = bool(error.extra.get("ambiguous"))
    failover = isinstance(error, ProviderUnavailable | ProviderRateLimited) and not ambiguous
    provider = gate.failover_for(job) if failover else job.provider
    if provider != job.provider and gate.paused_for(provider or "") > 0:
        provider = job.provider  # the other is paused by a 429: back off where we are
    event = _retry_event(error, delay)
    if ambiguous:
        event["ambiguous"] = True
    if provider != job.provider:
        event["failover"] = {"from": job.provider, "to": provider}
        delay = min(delay, FAILOVER_MAX_DELAY_S)
    event["retry_in_s"] = round(delay, 2)
    fields = {"provider": provider, **_error_fields(error), **fields}
    return Decision(Next.REQUEUE, delay, fields, event, **_leave(job, error), **news)


def _may_retry(job: Job, error: PixelpipeError) -> bool:
    if job.status in (_S.FETCHING, _S.STORING):
        return int(job.provider_state.get("fetch_errors") or 0) < job.max_attempts
    return job.attempt < job.max_attempts or _refused(job, error)


def _refused(job: Job, error: PixelpipeError) -> bool:
    """A provider's 429 to the submit call: nothing ran, so no attempt was spent."""
    return isinstance(error, ProviderRateLimited) and job.status is _S.SUBMITTING


def _leave(job: Job, error: PixelpipeError) -> dict[str, Any]:
    """How the job leaves its current attempt: a provider's refusal ran nothing (its pending row
    goes); anything else — an answer lost after sending, a run the provider lost, an answer we
    could not read — may have started a billed run (unconfirmed). Queued: nothing was sent;
    fetching/storing: billed when the run succeeded."""
    if job.status not in (_S.SUBMITTING, _S.WAITING):
        return {}
    return {"close_attempt": True, "charged": False if refused_by_provider(error) else None}


def _gate_news(job: Job, error: PixelpipeError) -> dict[str, Any]:
    outage = OUTAGE_S if isinstance(error, ProviderUnavailable) and job.provider else None
    return {"pause_s": _pause(job, error), "outage_s": outage}


def _pause(job: Job, error: PixelpipeError) -> float | None:
    if isinstance(error, ProviderRateLimited) and job.provider:
        return float(error.retry_after or 1.0)
    return None


def _retry_event(error: PixelpipeError, delay: float) -> dict[str, Any]:
    return {"retrying": True, "error": _error(error), "retry_in_s": round(delay, 2)}


def _error(error: PixelpipeError) -> dict[str, Any]:
    return {"code": error.code, "detail": error.detail}


def _error_fields(error: PixelpipeError) -> dict[str, Any]:
    return {"error_code": error.code, "error_detail": error.detail}


def _uniform(rng: random.Random | None, low: float, high: float) -> float:
    return rng.uniform(low, high) if rng is not None else random.uniform(low, high)
