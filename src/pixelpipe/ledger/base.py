"""Stage 11 boundary — the cost ledger and budgets.

Money is integer micro-dollars (1 USD = 1_000_000). ``amount_micros=None`` means *unpriced*
(unknown price) and is never treated as $0. Every entry carries the price-table version used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pixelpipe.pricing.price import Price

ChargeKind = Literal["attempt", "cache_hit"]
# pending: sent (or about to be), outcome unknown yet; billed: the provider said what it costs;
# unconfirmed: the outcome will never be known (it may have been billed, at the estimate)
ChargeState = Literal["pending", "billed", "unconfirmed"]
# blocked: the attempt was paid for and output moderation blocked its image (migration 0011):
# still spent at its price, never $0, never left out of a report
Outcome = Literal["blocked"]
OPEN_RUN = ""  # the provider_job_id of a pending attempt whose run id is not known yet
Period = Literal["day", "month"]


@dataclass(frozen=True, slots=True)
class Budget:
    """A spending limit: ``scope`` "global" or "key:<api key id>", over a UTC day or month."""

    scope: str
    period: Period
    limit_micros: int
    source: Literal["settings", "table"] = "table"


@dataclass(frozen=True, slots=True)
class Reservation:
    """The estimate of one job held against its budgets until the job settles.

    :meth:`Ledger.reservation` hands one to the job store, which makes it in the transaction
    that inserts the job (a SQL ledger and store sharing a database: see
    :func:`pixelpipe.ledger.sql.reserve.make_reservation`). ``budgets`` are the ones from settings;
    the ledger's own stored budgets apply as well.
    """

    job_id: str
    api_key_id: str | None
    amount_micros: int
    created_at: float
    expires_at: float
    budgets: tuple[Budget, ...] = ()

    def active(self, now: float) -> bool:
        return self.expires_at > now


@dataclass(frozen=True, slots=True)
class Charge:
    """One billable event: a provider attempt, or a cache hit ($0, with the amount saved)."""

    job_id: str
    attempt: int
    provider: str
    provider_job_id: str  # "cache" for cache hits
    model: str
    kind: ChargeKind
    price: Price
    saved_micros: int | None = None
    api_key_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    state: ChargeState = "billed"
    outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class CostTotals:
    spent_today_micros: int
    spent_total_micros: int
    saved_total_micros: int
    unpriced_events: int
    images: int
    unconfirmed_events: int = 0  # attempts that may have been billed (counted at the estimate)


@dataclass(frozen=True, slots=True)
class UsageRow:
    group: str
    requests: int
    cache_hits: int
    spent_micros: int
    saved_micros: int
    unpriced_events: int

    @classmethod
    def total(cls, rows: list[UsageRow]) -> UsageRow:
        """The ``total`` row of a usage report: every column summed over ``rows``."""
        return cls(
            group="total",
            requests=sum(r.requests for r in rows),
            cache_hits=sum(r.cache_hits for r in rows),
            spent_micros=sum(r.spent_micros for r in rows),
            saved_micros=sum(r.saved_micros for r in rows),
            unpriced_events=sum(r.unpriced_events for r in rows),
        )


@dataclass(frozen=True, slots=True)
class ImageCostRow:
    """What one model's images cost on one provider (``model`` None: every model of it).

    An *image* is an attempt the provider answered ``succeeded`` (one image each: ``n`` is 1);
    ``spent_micros`` is what its priced images cost, and its unpriced images are counted apart
    (``unpriced_images``), never as $0. GPU time (self-hosted backends): ``gpu_seconds`` sums
    every attempt that reports some (failed billed runs included), ``image_gpu_seconds`` the
    ``gpu_images`` images that do; ``server_timed``/``wall_timed`` count the attempts by the
    measure their seconds came from (the backend's own, or pixelpipe's wall time).
    """

    provider: str
    model: str | None
    images: int
    unpriced_images: int
    spent_micros: int
    gpu_seconds: float = 0.0
    gpu_images: int = 0
    image_gpu_seconds: float = 0.0
    server_timed: int = 0
    wall_timed: int = 0

    @property
    def priced_images(self) -> int:
        return self.images - self.unpriced_images

    @property
    def micros_per_image(self) -> int | None:
        """The mean cost of a priced image, half-up; None when no image was priced."""
        if self.priced_images == 0:
            return None
        return (2 * self.spent_micros + self.priced_images) // (2 * self.priced_images)

    @property
    def gpu_seconds_per_image(self) -> float | None:
        return self.image_gpu_seconds / self.gpu_images if self.gpu_images else None

    @property
    def gpu_time_source(self) -> str | None:
        """ "server", "wall", "mixed" (both measures in the group), or None (no GPU time)."""
        if self.server_timed and self.wall_timed:
            return "mixed"
        return "server" if self.server_timed else "wall" if self.wall_timed else None

    @classmethod
    def combined(cls, provider: str, rows: list[ImageCostRow]) -> ImageCostRow:
        """One provider's row: its models' ``rows`` summed."""
        return cls(
            provider=provider,
            model=None,
            images=sum(r.images for r in rows),
            unpriced_images=sum(r.unpriced_images for r in rows),
            spent_micros=sum(r.spent_micros for r in rows),
            gpu_seconds=sum(r.gpu_seconds for r in rows),
            gpu_images=sum(r.gpu_images for r in rows),
            image_gpu_seconds=sum(r.image_gpu_seconds for r in rows),
            server_timed=sum(r.server_timed for r in rows),
            wall_timed=sum(r.wall_timed for r in rows),
        )


@runtime_checkable
class Ledger(Protocol):
    async def reserve(self, job_id: str, api_key_id: str | None, amount_micros: int) -> None:
        """Reserve the estimate against every budget that applies; raise errors.BudgetExceeded.

        Atomic (no overspend under concurrency) and idempotent per ``job_id``.
        """
        ...

    def reservation(
        self, job_id: str, api_key_id: str | None, amount_micros: int
    ) -> Reservation | None:
        """:meth:`reserve` as a value for the job store to make in the transaction that inserts
        the job (``JobStore.admit(job, guard=...)``: a SQL ledger sharing the job store's
        database), or None: then the caller awaits :meth:`reserve` itself."""
        ...

    def entry_values(self, charge: Charge) -> dict[str, Any] | None:
        """:meth:`record` of a brand-new job's charge (a cache hit) as the row for the job store
        to insert in the transaction that creates the job (``JobStore.create_cache_hit(job,
        entry=...)``: a SQL ledger sharing the job store's database): one commit instead of two.
        None: then the caller awaits :meth:`record` itself once the job is in."""
        ...

    def pending_values(self, charge: Charge) -> dict[str, Any] | None:
        """:meth:`open_attempt` as the row for the job store to insert in the transaction that
        moves the job to submitting (``JobStore.transition(..., entry=...)``: a SQL ledger
        sharing the job store's database), or None: then the caller awaits :meth:`open_attempt`
        itself once the job moved."""
        ...

    async def open_attempt(self, charge: Charge) -> None:
        """Before a request that may cost money is sent: the attempt's ``pending`` row, at the
        estimated price and with no run id yet. Idempotent per (job_id, attempt)."""
        ...

    async def record(self, charge: Charge) -> bool:
        """Record a charge; idempotent on (job_id, attempt, provider_job_id, kind). True if new.

        An attempt's charge completes the attempt's open (pending or unconfirmed) row when there
        is one, so that one provider attempt is one row whatever the order of events."""
        ...

    async def close_attempt(self, job_id: str, attempt: int, *, charged: bool | None) -> None:
        """The attempt ended without a charge being recorded: ``charged=False`` (the provider
        refused it; nothing ran) removes its pending row, ``None`` (nobody will ever know) marks
        it ``unconfirmed``. Rows already billed or unconfirmed are left as they are."""
        ...

    async def mark_blocked(self, job_id: str, attempt: int) -> bool:
        """The attempt's image was blocked by moderation: its charge (billed or unconfirmed) is
        marked ``outcome="blocked"`` — price and state unchanged. Idempotent; True when a row
        was marked now, False when there is none or it was marked before."""
        ...

    async def settle(self, job_id: str) -> None:
        """The job finished: drop its reservation (actual cost is in the recorded charges); any
        attempt of it still pending becomes unconfirmed."""
        ...

    async def release(self, job_id: str) -> None:
        """The job failed or was refused: drop its reservation; pending attempts become
        unconfirmed."""
        ...

    async def totals(self, *, now: float | None = None) -> CostTotals: ...

    async def usage(
        self, group_by: str, *, since: float | None = None, until: float | None = None
    ) -> list[UsageRow]: ...

    async def image_costs(
        self, *, since: float | None = None, until: float | None = None
    ) -> list[ImageCostRow]:
        """What images cost per (provider, model), ordered by provider then model: a read-side
        report (cache hits and pending attempts left out), see :class:`ImageCostRow`."""
        ...
