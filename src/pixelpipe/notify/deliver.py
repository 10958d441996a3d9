"""The completion-webhook delivery loop: claim due outbox rows, POST them signed, record outcomes.

Standard Webhooks delivery rules: a 2xx answer is success; anything else (3xx included — redirects
are not followed), a timeout or a connection error is retried on the schedule in
``PIXELPIPE_WEBHOOK_RETRY_SCHEDULE_S`` (default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h,
24 h after the first attempt, each ±10 % jitter; a larger ``Retry-After`` wins), then the row is
marked ``failed``. ``410 Gone`` stops at once. Destinations must be public ``https`` hosts unless
``PIXELPIPE_WEBHOOK_ALLOW_PRIVATE`` (or test mode, loopback only) says otherwise; the address
check runs on every attempt, and the same rule refuses such a URL when it is given
(:mod:`pixelpipe.security.webhook_destinations`). The loop runs beside the worker and never
blocks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass

import httpx

from pixelpipe.errors import ConfigError, OutputBlocked
from pixelpipe.fetch import FetchPolicy, check_url
from pixelpipe.notify.outbox import Delivery, Outbox
from pixelpipe.notify.signing import headers as signed_headers
from pixelpipe.notify.signing import webhook_secret
from pixelpipe.providers.http import retry_after_seconds
from pixelpipe.security.webhook_destinations import webhook_policy
from pixelpipe.services import JobCompletions, Services
from pixelpipe.version import __version__

log = logging.getLogger("pixelpipe.notify")
TIMEOUT_S = 15.0  # per attempt (the spec suggests 15-30 s)
LEASE_S = TIMEOUT_S + 45.0  # a claimed row is retried by another sender after this
BATCH = 32
IDLE_S = 5.0  # look for rows queued by other processes at least this often
MAX_RETRY_AFTER_S = 24 * 3600.0


def parse_schedule(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError:
        raise ConfigError(
            "PIXELPIPE_WEBHOOK_RETRY_SCHEDULE_S must be comma-separated seconds, e.g. 5,300,1800"
        ) from None
    if any(d < 0 for d in delays):
        raise ConfigError("PIXELPIPE_WEBHOOK_RETRY_SCHEDULE_S: delays must be >= 0")
    return delays


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str = ""
    retry_after: float | None = None
    permanent: bool = False  # give up now (410, refused destination)


class WebhookDeliverer:
    """Sends what :class:`~pixelpipe.notify.hooks.CompletionHooks` queued."""

    def __init__(self, svc: Services, hooks: JobCompletions) -> None:
        self.svc = svc
        self.hooks = hooks
        self.outbox = Outbox(svc.db)
        self.schedule = parse_schedule(svc.settings.webhook_retry_schedule_s)
        self.secret = webhook_secret(svc.settings)
        policy = webhook_policy(svc.settings)  # the rule submit applied (notify.destinations)
        self.policy = policy or FetchPolicy(allow_http_and_loopback=svc.settings.test_mode)
        self.check_addresses = policy is not None
        self.http = httpx.AsyncClient(
            timeout=TIMEOUT_S,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": f"pixelpipe/{__version__} (completion webhook)"},
        )

    async def run(self) -> None:
        """Deliver forever (cancel to stop); rows survive restarts in the outbox."""
        try:
            while True:
                try:
                    sent = await self.deliver_due()
                except Exception:
                    log.exception("webhook delivery round failed; trying again shortly")
                    sent = 0
                if sent == 0:
                    await self._sleep()
        finally:
            await self.http.aclose()

    async def deliver_due(self) -> int:
        """One round: claim due rows and send them concurrently. Returns how many were tried."""
        rows = await self.outbox.claim_due(limit=BATCH, lease_s=LEASE_S)
        if rows:
            await asyncio.gather(*(self.deliver(row) for row in rows))
        return len(rows)

    async def deliver(self, row: Delivery) -> Outcome:
        outcome = await self.attempt(row)
        if outcome.ok:
            await self.outbox.delivered(row.id, outcome.status or 200)
            log.info("webhook %s delivered (attempt %d)", row.id, row.attempts)
            return outcome
        delay = self.delay_after(row.attempts, outcome.retry_after)
        if outcome.permanent or delay is None:
            await self.outbox.give_up(row.id, outcome.status, outcome.error)
            log.warning("webhook %s failed for good: %s", row.id, outcome.error)
        else:
            await self.outbox.retry_at(row.id, time.time() + delay, outcome.status, outcome.error)
            log.info(
                "webhook %s attempt %d failed (%s); next in %.1fs",
                row.id,
                row.attempts,
                outcome.error,
                delay,
            )
        return outcome

    def delay_after(self, attempts: int, retry_after: float | None) -> float | None:
        """Seconds until the next attempt after ``attempts`` tries; None = give up."""
        if attempts > len(self.schedule):
            return None
        delay = self.schedule[attempts - 1] * random.uniform(0.9, 1.1)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        return delay

    async def attempt(self, row: Delivery) -> Outcome:
        url = httpx.URL(row.url)
        if self.check_addresses:
            try:
                await check_url(url, self.policy)
            except OutputBlocked as exc:
                return Outcome(False, error=f"destination refused: {exc.detail}", permanent=True)
        body = row.payload.encode()
        headers = {
            "content-type": "application/json",
            **signed_headers(self.secret, row.id, int(time.time()), body),
        }
        try:
            resp = await self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:300])
        if 200 <= resp.status_code < 300:
            return Outcome(True, resp.status_code)
        return Outcome(
            False,
            resp.status_code,
            error=f"HTTP {resp.status_code}",
            retry_after=retry_after_seconds(resp.headers.get("retry-after")),
            permanent=resp.status_code == 410,
        )

    async def _sleep(self) -> None:
        self.hooks.wakeup.clear()
        nxt = await self.outbox.next_due_at()
        timeout = IDLE_S if nxt is None else min(IDLE_S, max(0.0, nxt - time.time()))
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hooks.wakeup.wait(), timeout)


def start_delivery(svc: Services) -> asyncio.Task[None]:
    """Start the delivery loop for ``svc``."""
    hooks = svc.completion_hooks
    hooks.worker_here = True  # the callers start a dispatcher beside it: ends are announced
    return asyncio.create_task(WebhookDeliverer(svc, hooks).run(), name="completion-webhooks")
