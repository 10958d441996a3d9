"""The retry/failover policy as a table: every rule of ``pixelpipe.worker.policy.decide``.

The policy is pure, so each row is a job, an error and what the gate says, and the exact
decision; jitter is pinned to its upper bound (backoff before retry n: 2^(n-1) s; a Retry-After
of h: h + 0.25·h + 0.05 s).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from pixelpipe.errors import (
    DatabaseUnavailable,
    ImageInvalid,
    InternalStepError,
    OutputFetchError,
    PixelpipeError,
    ProviderAuthError,
    ProviderContentRejected,
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderRateLimited,
    ProviderUnavailable,
    StorageError,
)
from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.key import content_key
from pixelpipe.worker.policy import (
    SUBMIT,
    Decision,
    Next,
    backoff_s,
    decide,
    refused_by_provider,
    retry_delay_s,
)

S = JobStatus
REP = "replicate"


class Top(random.Random):
    """Jitter at its upper bound: the table's delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass
class Gate:
    paused: dict[str, float] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    alternative: str = "fal"

    def paused_for(self, provider: str) -> float:
        return self.paused.get(provider, 0.0)

    def available(self, provider: str) -> bool:
        return self.paused_for(provider) <= 0 and provider not in self.down

    def failover_for(self, job: Job) -> str:
        return self.alternative


def job(
    status: JobStatus,
    *,
    attempt: int = 1,
    run: str | None = None,
    provider: str | None = REP,
    **state: Any,
) -> Job:
    req = CanonicalRequest(
        model="flux-schnell", prompt="a fox", seed=1, width=64, height=64, format="png"
    )
    now = time.time()
    return Job(
        id="job_1",
        status=status,
        model="flux-schnell",
        request=req,
        content_key=content_key(req),
        created_at=now,
        updated_at=now,
        deadline_at=now + 600,
        provider=provider,
        attempt=attempt,
        provider_job_id=run,
        provider_state=dict(state),
    )


def problem(error: PixelpipeError) -> dict[str, Any]:
    return {"code": error.code, "detail": error.detail}


def failed(error: PixelpipeError) -> dict[str, str]:
    return {"error_code": error.code, "error_detail": error.detail}


def retry(error: PixelpipeError, delay: float, **more: Any) -> dict[str, Any]:
    return {"retrying": True, "error": problem(error), "retry_in_s": delay, **more}


RL3 = ProviderRateLimited("429", retry_after=3.0)
RL = ProviderRateLimited("429")
DOWN = ProviderUnavailable("503")
DOWN_UNSENT = ProviderUnavailable("connect failed", billable=False)
AMBIGUOUS = ProviderUnavailable("read timeout", ambiguous=True)
LOST = ProviderJobLost("gone")
DB = DatabaseUnavailable("database error: OperationalError")
BUG = InternalStepError("internal error: KeyError")
INVALID = ProviderInvalidInput("bad size")
REJECTED = ProviderContentRejected("nsfw")
AUTH = ProviderAuthError("401")
FLAKY = ProviderFailed("hiccup", transient=True)
STORAGE = StorageError("s3 down")
UNREADABLE = OutputFetchError("404")
PAUSED = f"{REP} is paused for 4.0 s after a rate limit (Retry-After)"
GATE_ERROR = {"code": "provider_rate_limited", "detail": PAUSED}
OUTAGE = {"outage_s": 10.0}
FAILOVER = {"failover": {"from": REP, "to": "fal"}}

# name: (job, error, gate, polling) -> decision
ROWS: dict[str, tuple[Job, PixelpipeError | None, Gate, bool, Decision]] = {
    # ---- rule 1: before a submit --------------------------------------------------------------
    "provider free: submit": (job(S.QUEUED), None, Gate(), False, SUBMIT),
    "paused, another free: fail over now, no attempt spent": (
        job(S.QUEUED),
        None,
        Gate(paused={REP: 4.0}),
        False,
        Decision(
            Next.WAIT,
            0.0,
            {"provider": "fal"},
            {"retrying": True, "error": GATE_ERROR, "retry_in_s": 0.0, **FAILOVER},
        ),
    ),
    "paused, the other paused too: wait out the pause": (
        job(S.QUEUED),
        None,
        Gate(paused={REP: 4.0, "fal": 1.0}),
        False,
        Decision(Next.WAIT, 4.45, {}, {"retrying": True, "error": GATE_ERROR, "retry_in_s": 4.45}),
    ),
    "paused, the other down: wait out the pause": (
        job(S.QUEUED),
        None,
        Gate(paused={REP: 4.0}, down={"fal"}),
        False,
        Decision(Next.WAIT, 4.45, {}, {"retrying": True, "error": GATE_ERROR, "retry_in_s": 4.45}),
    ),
    "paused, no other provider: wait out the pause": (
        job(S.QUEUED),
        None,
        Gate(paused={REP: 4.0}, alternative=REP),
        False,
        Decision(Next.WAIT, 4.45, {}, {"retrying": True, "error": GATE_ERROR, "retry_in_s": 4.45}),
    ),
    "an outage mark never blocks a submit": (job(S.QUEUED), None, Gate(down={REP}), False, SUBMIT),
    # ---- rule 2: a failed status call ---------------------------------------------------------
    "poll 429: ask again after Retry-After, pause the provider": (
        job(S.WAITING, run="r1"),
        RL3,
        Gate(),
        True,
        Decision(
            Next.WAIT,
            3.8,
            {"provider_state": {"poll_errors": 1}},
            {"retrying": True, "polling": True, "error": problem(RL3), "retry_in_s": 3.8},
            pause_s=3.0,
        ),
    ),
    "poll 5xx: backoff on the poll error count, no outage mark": (
        job(S.WAITING, run="r1", poll_errors=2, progress={"percent": 5}),
        DOWN,
        Gate(),
        True,
        Decision(
            Next.WAIT,
            4.0,
            {"provider_state": {"poll_errors": 3, "progress": {"percent": 5}}},
            {"retrying": True, "polling": True, "error": problem(DOWN), "retry_in_s": 4.0},
        ),
    ),
    "poll error marked transient: ask again": (
        job(S.WAITING, run="r1"),
        FLAKY,
        Gate(),
        True,
        Decision(
            Next.WAIT,
            1.0,
            {"provider_state": {"poll_errors": 1}},
            {"retrying": True, "polling": True, "error": problem(FLAKY), "retry_in_s": 1.0},
        ),
    ),
    "poll finds the run lost: a failed step (may have run: unconfirmed)": (
        job(S.WAITING, run="r1"),
        LOST,
        Gate(),
        True,
        Decision(Next.FAIL, fields=failed(LOST), close_attempt=True, charged=None),
    ),
    "poll 429 of a job without a provider: no pause": (
        job(S.WAITING, run="r1", provider=None),
        RL,
        Gate(),
        True,
        Decision(
            Next.WAIT,
            1.0,
            {"provider_state": {"poll_errors": 1}},
            {"retrying": True, "polling": True, "error": problem(RL), "retry_in_s": 1.0},
        ),
    ),
    # ---- rule 3: permanent errors fail the job ------------------------------------------------
    "invalid input at submit: fail, nothing ran": (
        job(S.SUBMITTING),
        INVALID,
        Gate(),
        False,
        Decision(Next.FAIL, fields=failed(INVALID), close_attempt=True, charged=False),
    ),
    "content rejected while waiting: fail, nothing ran": (
        job(S.WAITING, run="r1"),
        REJECTED,
        Gate(),
        False,
        Decision(Next.FAIL, fields=failed(REJECTED), close_attempt=True, charged=False),
    ),
    "the run failed: fail, the attempt unconfirmed": (
        job(S.WAITING, run="r1"),
        ProviderFailed("boom"),
        Gate(),
        False,
        Decision(
            Next.FAIL,
            fields=failed(ProviderFailed("boom")),
            close_attempt=True,
            charged=None,
        ),
    ),
    "auth error while queued: fail, no attempt to close": (
        job(S.QUEUED, attempt=0),
        AUTH,
        Gate(),
        False,
        Decision(Next.FAIL, fields=failed(AUTH)),
    ),
    "unreadable output: fail, the run is billed already": (
        job(S.FETCHING, run="r1"),
        UNREADABLE,
        Gate(),
        False,
        Decision(Next.FAIL, fields=failed(UNREADABLE)),
    ),
    "not an image: fail": (
        job(S.STORING, run="r1"),
        ImageInvalid("x"),
        Gate(),
        False,
        Decision(Next.FAIL, fields=failed(ImageInvalid("x"))),
    ),
    # ---- rule 3: out of attempts --------------------------------------------------------------
    "5xx on the last attempt: fail, unconfirmed, mark the outage": (
        job(S.SUBMITTING, attempt=5),
        DOWN,
        Gate(),
        False,
        Decision(Next.FAIL, fields=failed(DOWN), close_attempt=True, charged=None, **OUTAGE),
    ),
    "never reached the provider on the last attempt: fail, nothing ran": (
        job(S.SUBMITTING, attempt=5),
        DOWN_UNSENT,
        Gate(),
        False,
        Decision(
            Next.FAIL, fields=failed(DOWN_UNSENT), close_attempt=True, charged=False, **OUTAGE
        ),
    ),
    "storage down after max fetch errors: fail": (
        job(S.STORING, run="r1", fetch_errors=5),
        STORAGE,
        Gate(),
        False,
        Decision(Next.FAIL, fields=failed(STORAGE)),
    ),
    # ---- rule 3: fetch again ------------------------------------------------------------------
    "storage down while storing: fetch again, never pay again": (
        job(S.STORING, run="r1", attempt=3, fetch_errors=1),
        STORAGE,
        Gate(),
        False,
        Decision(Next.WAIT, 2.0, {"provider_state": {"fetch_errors": 2}}, retry(STORAGE, 2.0)),
    ),
    "fetch error marked transient: fetch again, even past max attempts": (
        job(S.FETCHING, run="r1", attempt=5),
        OutputFetchError("503", transient=True),
        Gate(),
        False,
        Decision(
            Next.WAIT,
            1.0,
            {"provider_state": {"fetch_errors": 1}},
            retry(OutputFetchError("503", transient=True), 1.0),
        ),
    ),
    # ---- rule 3: wait in place ----------------------------------------------------------------
    "database busy while queued: wait in place": (
        job(S.QUEUED, attempt=0),
        DB,
        Gate(),
        False,
        Decision(Next.WAIT, 1.0, failed(DB), retry(DB, 1.0)),
    ),
    "5xx while queued: wait in place, mark the outage": (
        job(S.QUEUED, attempt=2),
        DOWN,
        Gate(),
        False,
        Decision(Next.WAIT, 2.0, failed(DOWN), retry(DOWN, 2.0), **OUTAGE),
    ),
    "our bug while the provider holds a run: keep the run": (
        job(S.WAITING, run="r1", attempt=2),
        BUG,
        Gate(),
        False,
        Decision(Next.WAIT, 2.0, failed(BUG), retry(BUG, 2.0)),
    ),
    # ---- rule 3: requeue ----------------------------------------------------------------------
    "database busy mid-submit, no run saved: requeue in place, unconfirmed": (
        job(S.SUBMITTING),
        DB,
        Gate(),
        False,
        Decision(
            Next.REQUEUE,
            1.0,
            {"provider": REP, **failed(DB)},
            retry(DB, 1.0),
            close_attempt=True,
            charged=None,
        ),
    ),
    "429 on submit: attempt back, fail over, pause": (
        job(S.SUBMITTING, attempt=2),
        RL,
        Gate(),
        False,
        Decision(
            Next.REQUEUE,
            0.5,
            {
                "provider": "fal",
                **failed(RL),
                "attempt": 1,
                "provider_state": {"rate_limited": 1},
            },
            retry(RL, 0.5, **FAILOVER),
            close_attempt=True,
            charged=False,
            pause_s=1.0,
        ),
    ),
    "429 on submit past max attempts: still retried (it ran nothing)": (
        job(S.SUBMITTING, attempt=5, rate_limited=2),
        RL3,
        Gate(alternative=REP),
        False,
        Decision(
            Next.REQUEUE,
            3.8,
            {
                "provider": REP,
                **failed(RL3),
                "attempt": 4,
                "provider_state": {"rate_limited": 3},
            },
            retry(RL3, 3.8),
            close_attempt=True,
            charged=False,
            pause_s=3.0,
        ),
    ),
    "429 on submit, the other paused too: back off here on the refusal count": (
        job(S.SUBMITTING, attempt=2, rate_limited=2),
        RL,
        Gate(paused={"fal": 9.0}),
        False,
        Decision(
            Next.REQUEUE,
            4.0,
            {
                "provider": REP,
                **failed(RL),
                "attempt": 1,
                "provider_state": {"rate_limited": 3},
            },
            retry(RL, 4.0),
            close_attempt=True,
            charged=False,
            pause_s=1.0,
        ),
    ),
    "5xx from the run: fail over, unconfirmed, mark the outage": (
        job(S.WAITING, run="r1", attempt=3),
        DOWN,
        Gate(),
        False,
        Decision(
            Next.REQUEUE,
            0.5,
            {"provider": "fal", **failed(DOWN)},
            retry(DOWN, 0.5, **FAILOVER),
            close_attempt=True,
            charged=None,
            **OUTAGE,
        ),
    ),
    "5xx before sending: fail over, nothing ran": (
        job(S.SUBMITTING, attempt=1),
        DOWN_UNSENT,
        Gate(),
        False,
        Decision(
            Next.REQUEUE,
            0.5,
            {"provider": "fal", **failed(DOWN_UNSENT)},
            retry(DOWN_UNSENT, 0.5, **FAILOVER),
            close_attempt=True,
            charged=False,
            **OUTAGE,
        ),
    ),
    "5xx, no other provider: back off here": (
        job(S.SUBMITTING, attempt=2),
        DOWN,
        Gate(alternative=REP),
        False,
        Decision(
            Next.REQUEUE,
            2.0,
            {"provider": REP, **failed(DOWN)},
            retry(DOWN, 2.0),
            close_attempt=True,
            charged=None,
            **OUTAGE,
        ),
    ),
    "ambiguous timeout: same provider, said so, unconfirmed": (
        job(S.SUBMITTING, attempt=1),
        AMBIGUOUS,
        Gate(),
        False,
        Decision(
            Next.REQUEUE,
            1.0,
            {"provider": REP, **failed(AMBIGUOUS)},
            retry(AMBIGUOUS, 1.0, ambiguous=True),
            close_attempt=True,
            charged=None,
            **OUTAGE,
        ),
    ),
    "transient run failure: same provider after backoff": (
        job(S.WAITING, run="r1", attempt=4),
        FLAKY,
        Gate(),
        False,
        Decision(
            Next.REQUEUE,
            8.0,
            {"provider": REP, **failed(FLAKY)},
            retry(FLAKY, 8.0),
            close_attempt=True,
            charged=None,
        ),
    ),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_decide(name: str) -> None:
    the_job, error, gate, polling, expected = ROWS[name]
    assert decide(the_job, error, gate, polling=polling, rng=Top()) == expected


def test_decide_does_not_change_the_job() -> None:
    the_job = job(S.SUBMITTING, attempt=2, rate_limited=1)
    before = (the_job.attempt, dict(the_job.provider_state), the_job.status)
    decide(the_job, RL, Gate(), rng=Top())
    assert (the_job.attempt, the_job.provider_state, the_job.status) == before


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (RL, True),
        (INVALID, True),
        (AUTH, True),
        (REJECTED, True),
        (DOWN_UNSENT, True),
        (DOWN, False),
        (AMBIGUOUS, False),
        (ProviderRateLimited("429", ambiguous=True), False),
        (LOST, False),
        (DB, False),
        (InternalStepError("x", billable=False), False),
    ],
)
def test_refused_by_provider(error: PixelpipeError, refused: bool) -> None:
    assert refused_by_provider(error) is refused


def test_backoff_doubles_from_one_second_up_to_five_minutes() -> None:
    assert [backoff_s(n, Top()) for n in (0, 1, 2, 3, 10)] == [1.0, 1.0, 2.0, 4.0, 300.0]
    assert all(0.5 <= backoff_s(1) <= 1.0 for _ in range(50))  # full jitter, lower half kept


def test_retry_after_wins_over_backoff() -> None:
    assert retry_delay_s(RL3, 9, Top()) == 3.8
    assert retry_delay_s(RL, 3, Top()) == 4.0  # no Retry-After: backoff
    assert retry_delay_s(DOWN, 1, Top()) == 1.0
