"""The Ledger contract, run against MemoryLedger and SqlLedger (SQLite through the migrations)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pixelpipe.errors import BudgetExceeded, InvalidRequest
from pixelpipe.intake import CanonicalRequest
from pixelpipe.ledger import Charge, ImageCostRow, Ledger, Price, UsageRow
from pixelpipe.ledger.entry import LedgerEntry
from pixelpipe.pricing import load_price_table

from .conftest import TTL, HarnessFactory

DAY = 86_400.0
V = "2026-01"


def charge(
    job_id: str = "j1",
    amount: int | None = 25_000,
    *,
    attempt: int = 1,
    provider: str = "replicate",
    provider_job_id: str = "p1",
    model: str = "flux-dev",
    kind: str = "attempt",
    saved: int | None = None,
    key: str | None = None,
    version: str = V,
) -> Charge:
    basis = "unknown" if amount is None else "per_image"
    return Charge(
        job_id=job_id,
        attempt=attempt,
        provider=provider,
        provider_job_id=provider_job_id,
        model=model,
        kind=kind,  # type: ignore[arg-type]
        price=Price(amount, version, basis),
        saved_micros=saved,
        api_key_id=key,
        detail={"note": "test"},
    )


def cache_hit(job_id: str, saved: int, *, key: str | None = None) -> Charge:
    return Charge(
        job_id=job_id,
        attempt=0,
        provider="cache",
        provider_job_id="cache",
        model="flux-dev",
        kind="cache_hit",
        price=Price(0, V, "cache"),
        saved_micros=saved,
        api_key_id=key,
    )


# --- recording -----------------------------------------------------------------------------------


async def test_implements_the_protocol(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    assert isinstance(h.ledger, Ledger)


async def test_duplicate_record_is_one_entry(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    assert await h.ledger.record(charge()) is True
    assert await h.ledger.record(charge()) is False  # duplicate webhook / retry / restart
    assert await h.ledger.record(charge(amount=99)) is False  # same attempt, whatever the price
    assert await h.ledger.record(charge(attempt=2, provider_job_id="p2")) is True
    entries = await h.ledger.entries("j1")
    assert [(e.charge.attempt, e.amount_micros) for e in entries] == [(1, 25_000), (2, 25_000)]
    assert (await h.ledger.totals()).spent_total_micros == 50_000


async def test_concurrent_duplicates_are_one_entry(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    ledgers = h.siblings(4)
    results = await asyncio.gather(*(ledgers[i % 4].record(charge()) for i in range(20)))
    assert results.count(True) == 1
    assert len(await h.ledger.entries()) == 1


async def test_entry_keeps_what_was_charged(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.record(charge(key="k1"))
    (entry,) = await h.ledger.entries()
    assert entry.charge == charge(key="k1")
    assert entry.day == "2026-06-15"
    assert entry.created_at == h.clock.now


async def test_cache_hit_records_zero_and_the_saving(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.record(charge("j1"))
    assert await h.ledger.record(cache_hit("j2", 25_000)) is True
    totals = await h.ledger.totals()
    assert totals.spent_total_micros == 25_000
    assert totals.saved_total_micros == 25_000
    assert totals.unpriced_events == 0
    (row,) = await h.ledger.usage("model")
    assert row == UsageRow("flux-dev", 2, 1, 25_000, 25_000, 0)


async def test_unknown_price_is_unpriced_in_ledger_and_report(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    prices = load_price_table()
    req = CanonicalRequest("mystery-model", "a fox", 1, 1024, 1024, "png")
    price = prices.estimate(req, "replicate", at=h.clock.now)
    assert price.amount_micros is None
    unpriced = charge("j1", None, model="mystery-model")
    await h.ledger.record(unpriced)
    await h.ledger.record(charge("j2", 25_000))
    (entry, _) = await h.ledger.entries()
    assert entry.amount_micros is None
    assert entry.charge.price.basis == "unknown"
    totals = await h.ledger.totals()
    assert (totals.spent_total_micros, totals.unpriced_events) == (25_000, 1)
    rows = {r.group: r for r in await h.ledger.usage("model")}
    assert rows["mystery-model"] == UsageRow("mystery-model", 1, 0, 0, 0, 1)
    assert rows["flux-dev"].unpriced_events == 0


async def test_price_version_is_recorded_and_changes_on_its_date(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '[[versions]]\nversion = "v1"\neffective = 2026-01-01\n'
        '[versions.models.replicate.flux-dev]\nbasis = "per_image"\nusd = 0.025\n'
        '[[versions]]\nversion = "v2"\neffective = 2026-06-16\n'
        '[versions.models.replicate.flux-dev]\nbasis = "per_image"\nusd = 0.03\n'
    )
    prices = load_price_table(path)
    h = await make_harness()
    req = CanonicalRequest("flux-dev", "a fox", 1, 1024, 1024, "png")
    for job in ("j1", "j2"):
        price = prices.actual(req, "replicate", {}, at=h.clock.now)
        await h.ledger.record(Charge(job, 1, "replicate", "p", "flux-dev", "attempt", price))
        h.clock.advance(DAY)
    got = [(e.charge.price.version, e.amount_micros) for e in await h.ledger.entries()]
    assert got == [("v1", 25_000), ("v2", 30_000)]


# --- reports -------------------------------------------------------------------------------------


async def test_usage_groups_by_each_dimension(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.record(charge("j1", 25_000, key="k1"))
    await h.ledger.record(charge("j1", 25_000, key="k1", attempt=2, provider_job_id="p2"))
    await h.ledger.record(charge("j2", 6_000, provider="fal", model="flux-schnell", key="k2"))
    h.clock.advance(DAY)
    await h.ledger.record(cache_hit("j3", 25_000))
    assert await h.ledger.usage("provider") == [
        UsageRow("cache", 1, 1, 0, 25_000, 0),
        UsageRow("fal", 1, 0, 6_000, 0, 0),
        UsageRow("replicate", 1, 0, 50_000, 0, 0),
    ]
    assert await h.ledger.usage("key") == [
        UsageRow("-", 1, 1, 0, 25_000, 0),
        UsageRow("k1", 1, 0, 50_000, 0, 0),
        UsageRow("k2", 1, 0, 6_000, 0, 0),
    ]
    assert await h.ledger.usage("day") == [
        UsageRow("2026-06-15", 2, 0, 56_000, 0, 0),
        UsageRow("2026-06-16", 1, 1, 0, 25_000, 0),
    ]
    models = await h.ledger.usage("model")
    assert [(r.group, r.requests, r.spent_micros) for r in models] == [
        ("flux-dev", 2, 50_000),
        ("flux-schnell", 1, 6_000),
    ]


async def test_usage_window_is_since_inclusive_until_exclusive(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness()
    t0 = h.clock.now
    await h.ledger.record(charge("j1"))
    h.clock.advance(10)
    await h.ledger.record(charge("j2"))
    assert [r.requests for r in await h.ledger.usage("day", since=t0, until=t0 + 10)] == [1]
    assert [r.requests for r in await h.ledger.usage("day", since=t0 + 10)] == [1]
    assert [r.requests for r in await h.ledger.usage("day", until=t0 + 11)] == [2]
    assert await h.ledger.usage("day", since=t0 + 11) == []


async def test_usage_refuses_an_unknown_grouping(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    with pytest.raises(InvalidRequest, match="group_by"):
        await h.ledger.usage("colour")


async def test_totals_split_today_from_total(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.record(charge("j1", 25_000))
    h.clock.advance(DAY)
    await h.ledger.record(charge("j2", 3_000))
    await h.ledger.record(cache_hit("j3", 3_000))
    totals = await h.ledger.totals()
    assert totals.spent_today_micros == 3_000
    assert totals.spent_total_micros == 28_000
    assert totals.images == 3
    yesterday = await h.ledger.totals(now=h.clock.now - DAY)
    assert yesterday.spent_today_micros == 25_000


async def test_empty_ledger_totals(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    totals = await h.ledger.totals()
    assert (totals.spent_total_micros, totals.unpriced_events, totals.images) == (0, 0, 0)
    assert await h.ledger.usage("model") == []


# --- cost per image (self-hosted beside hosted) ------------------------------------------------


def run(
    job_id: str,
    amount: int | None,
    *,
    provider: str = "gpu_a",
    model: str = "flux-schnell",
    state: str = "succeeded",
    seconds: float | None = None,
    source: str = "server",
    attempt: int = 1,
) -> Charge:
    """A provider attempt as the worker records it (``detail.state``; GPU time on backends)."""
    detail: dict[str, Any] = {"state": state, "usage": {}}
    if seconds is not None:
        detail |= {"gpu_seconds": seconds, "gpu_time_source": source, "usd_per_gpu_hour": "1.8"}
    basis = "unknown" if amount is None else "gpu_time" if seconds is not None else "per_image"
    return Charge(
        job_id, attempt, provider, f"r-{job_id}-{attempt}", model, "attempt",
        Price(amount, V, basis), detail=detail,
    )  # fmt: skip


async def test_image_costs_per_provider_and_model(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.record(run("j1", 350, seconds=0.7))
    await h.ledger.record(run("j2", 450, seconds=0.9, source="wall"))
    # a failed run the backend billed: its GPU time counts, it is no image
    await h.ledger.record(run("j3", 100, seconds=0.2, state="failed"))
    await h.ledger.record(run("j3", 400, seconds=0.8, attempt=2))
    await h.ledger.record(run("j4", 3_000, provider="replicate"))
    await h.ledger.record(run("j5", None, provider="replicate"))  # unpriced: apart, never $0
    await h.ledger.record(run("j6", 25_000, provider="replicate", model="flux-dev"))
    await h.ledger.record(cache_hit("j7", 3_000))  # not a provider's image
    await h.ledger.open_attempt(run("j8", 999, seconds=1.0))  # pending: not counted yet
    rows = await h.ledger.image_costs()
    assert [(r.provider, r.model) for r in rows] == [
        ("gpu_a", "flux-schnell"),
        ("replicate", "flux-dev"),
        ("replicate", "flux-schnell"),
    ]
    gpu, dev, hosted = rows
    assert (gpu.images, gpu.unpriced_images, gpu.spent_micros) == (3, 0, 1_200)
    assert gpu.micros_per_image == 400
    assert gpu.gpu_seconds == pytest.approx(2.6)
    assert gpu.gpu_images == 3
    assert gpu.image_gpu_seconds == pytest.approx(2.4)
    assert gpu.gpu_seconds_per_image == pytest.approx(0.8)
    assert (gpu.server_timed, gpu.wall_timed, gpu.gpu_time_source) == (3, 1, "mixed")
    assert (hosted.images, hosted.priced_images, hosted.unpriced_images) == (2, 1, 1)
    assert (hosted.spent_micros, hosted.micros_per_image) == (3_000, 3_000)
    assert (hosted.gpu_images, hosted.gpu_seconds_per_image, hosted.gpu_time_source) == (
        0, None, None,
    )  # fmt: skip
    assert dev.micros_per_image == 25_000


async def test_image_costs_only_unpriced_have_no_mean(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.record(run("j1", None, provider="sdxl_box", seconds=6.0, source="wall"))
    (row,) = await h.ledger.image_costs()
    assert (row.images, row.unpriced_images, row.spent_micros) == (1, 1, 0)
    assert row.micros_per_image is None  # unknown, not $0
    assert (row.gpu_seconds_per_image, row.gpu_time_source) == (6.0, "wall")


async def test_image_costs_window_and_empty(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    assert await h.ledger.image_costs() == []
    t0 = h.clock.now
    await h.ledger.record(run("j1", 300, seconds=0.6))
    h.clock.advance(10)
    await h.ledger.record(run("j2", 500, seconds=1.0))
    (early,) = await h.ledger.image_costs(until=t0 + 10)
    (late,) = await h.ledger.image_costs(since=t0 + 10)
    assert (early.spent_micros, late.spent_micros) == (300, 500)
    assert await h.ledger.image_costs(since=t0 + 11) == []


def test_image_cost_mean_rounds_half_up() -> None:
    row = ImageCostRow("gpu_a", None, images=2, unpriced_images=0, spent_micros=3)
    assert row.micros_per_image == 2  # 1.5 µ$ → 2
    both = ImageCostRow.combined("gpu_a", [row, row])
    assert (both.images, both.spent_micros, both.model) == (4, 6, None)


# --- attempts before money can be spent ----------------------------------------------------------


def states(entries: list[LedgerEntry]) -> list[tuple[int, str, str, int | None]]:
    return [
        (e.charge.attempt, e.charge.provider_job_id, e.charge.state, e.amount_micros)
        for e in entries
    ]


async def test_open_attempt_is_completed_by_its_charge(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.open_attempt(charge(amount=30_000))
    await h.ledger.open_attempt(charge(amount=30_000))  # a retried step: still one row
    assert states(await h.ledger.entries("j1")) == [(1, "", "pending", 30_000)]
    assert (await h.ledger.totals()).spent_total_micros == 0  # in flight, not spent yet
    assert await h.ledger.record(charge(amount=25_000, provider_job_id="p1")) is True
    assert await h.ledger.record(charge(amount=25_000, provider_job_id="p1")) is False
    assert states(await h.ledger.entries("j1")) == [(1, "p1", "billed", 25_000)]
    assert (await h.ledger.totals()).spent_total_micros == 25_000


async def test_blocked_attempt_stays_spent_at_its_price(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.open_attempt(charge(amount=30_000))
    assert await h.ledger.mark_blocked("j1", 1) is False  # pending: nothing paid yet to mark
    await h.ledger.record(charge(amount=25_000, provider_job_id="p1"))
    assert await h.ledger.mark_blocked("j1", 1) is True
    assert await h.ledger.mark_blocked("j1", 1) is False  # a step run again: marked once
    [entry] = await h.ledger.entries("j1")
    assert (entry.charge.state, entry.charge.outcome, entry.amount_micros) == (
        "billed",
        "blocked",
        25_000,
    )
    assert (await h.ledger.totals()).spent_total_micros == 25_000  # never $0, never hidden
    assert await h.ledger.mark_blocked("j2", 1) is False  # no such attempt


async def test_refused_attempt_leaves_no_row(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.open_attempt(charge())
    await h.ledger.close_attempt("j1", 1, charged=False)
    assert await h.ledger.entries("j1") == []


async def test_unanswered_attempt_stays_unconfirmed_at_the_estimate(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness()
    await h.ledger.open_attempt(charge(amount=30_000))
    await h.ledger.close_attempt("j1", 1, charged=None)
    await h.ledger.close_attempt("j1", 1, charged=False)  # no longer pending: stays
    assert states(await h.ledger.entries("j1")) == [(1, "", "unconfirmed", 30_000)]
    totals = await h.ledger.totals()
    assert (totals.spent_total_micros, totals.unconfirmed_events) == (30_000, 1)
    # the orphaned run turns up after all (a late webhook): the same row, now billed
    assert await h.ledger.record(charge(amount=25_000, provider_job_id="p9")) is True
    assert states(await h.ledger.entries("j1")) == [(1, "p9", "billed", 25_000)]
    assert (await h.ledger.totals()).unconfirmed_events == 0


async def test_job_end_unconfirms_what_is_still_pending(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.reserve("j1", None, 30_000)
    await h.ledger.open_attempt(charge(attempt=1, amount=30_000))
    await h.ledger.open_attempt(charge(attempt=2, amount=30_000))
    await h.ledger.record(charge(attempt=2, amount=25_000, provider_job_id="p2"))
    await h.ledger.settle("j1")
    assert states(await h.ledger.entries("j1")) == [
        (1, "", "unconfirmed", 30_000),
        (2, "p2", "billed", 25_000),
    ]


async def test_pending_attempts_do_not_count_twice_against_a_budget(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness()
    await h.set_budget("global", "day", 60_000)
    await h.ledger.reserve("j1", None, 30_000)
    await h.ledger.open_attempt(charge(amount=30_000))  # covered by j1's reservation
    await h.ledger.reserve("j2", None, 30_000)  # fits: 30k reserved + 30k
    with pytest.raises(BudgetExceeded):
        await h.ledger.reserve("j3", None, 1)


# --- budgets -------------------------------------------------------------------------------------


async def test_hundred_concurrent_reserves_fit_exactly_ten(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.set_budget("global", "day", 250_000)
    ledgers = h.siblings(4)  # SQL: 4 Database objects = 4 writer connections on one file

    async def attempt(i: int) -> bool:
        try:
            await ledgers[i % len(ledgers)].reserve(f"job{i}", None, 25_000)
        except BudgetExceeded:
            return False
        return True

    accepted = await asyncio.gather(*(attempt(i) for i in range(100)))
    assert accepted.count(True) == 10
    assert await h.ledger.reserved_micros() == 250_000


async def test_reserve_refusal_says_which_budget_and_how_to_fix(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness()
    await h.set_budget("key:k1", "month", 30_000)
    await h.ledger.record(charge("old", 20_000, key="k1"))
    with pytest.raises(BudgetExceeded) as info:
        await h.ledger.reserve("j1", "k1", 25_000)
    err = info.value
    assert "monthly budget of API key 'k1'" in err.detail
    assert "$0.03 would be exceeded" in err.detail
    assert "$0.02 spent" in err.detail
    assert "needs an estimated $0.025" in err.detail
    assert "pixelpipe budgets set key:k1 month" in err.detail
    assert err.extra["limit_micros"] == 30_000
    assert err.extra["spent_micros"] == 20_000
    assert err.to_problem()["code"] == "budget_exceeded"


async def test_settings_budget_applies_globally(make_harness: HarnessFactory) -> None:
    h = await make_harness(budget_daily_usd=0.05)
    await h.ledger.reserve("j1", "k1", 25_000)
    await h.ledger.reserve("j2", None, 25_000)
    with pytest.raises(BudgetExceeded, match="PIXELPIPE_BUDGET_DAILY_USD"):
        await h.ledger.reserve("j3", "k2", 1)


async def test_table_and_settings_budgets_both_apply(make_harness: HarnessFactory) -> None:
    h = await make_harness(budget_daily_usd=1.0)
    await h.set_budget("global", "day", 30_000)
    await h.ledger.reserve("j1", None, 25_000)
    with pytest.raises(BudgetExceeded, match="global daily"):
        await h.ledger.reserve("j2", None, 25_000)


async def test_reserve_is_idempotent_per_job(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.set_budget("global", "day", 30_000)
    await h.ledger.reserve("j1", None, 25_000)
    await h.ledger.reserve("j1", None, 25_000)  # a retried submission
    assert await h.ledger.reserved_micros() == 25_000


async def test_settle_and_release_free_the_budget(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.set_budget("global", "day", 50_000)
    await h.ledger.reserve("j1", None, 25_000)
    await h.ledger.reserve("j2", None, 25_000)
    with pytest.raises(BudgetExceeded):
        await h.ledger.reserve("j3", None, 25_000)
    await h.ledger.release("j1")  # failed: nothing spent
    await h.ledger.reserve("j3", None, 25_000)
    await h.ledger.record(charge("j2", 20_000))  # completed for less than estimated
    await h.ledger.settle("j2")
    assert await h.ledger.reserved_micros() == 25_000
    await h.ledger.reserve("j4", None, 5_000)  # 20_000 spent + 25_000 reserved + 5_000
    with pytest.raises(BudgetExceeded):
        await h.ledger.reserve("j5", None, 1)
    await h.ledger.settle("never-reserved")  # no error


async def test_expired_reservations_do_not_count(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.set_budget("global", "day", 25_000)
    await h.ledger.reserve("crashed", None, 25_000)  # the process died before creating the job
    with pytest.raises(BudgetExceeded):
        await h.ledger.reserve("j1", None, 25_000)
    h.clock.advance(TTL + 1)
    assert await h.ledger.reserved_micros() == 0
    await h.ledger.reserve("j1", None, 25_000)


async def test_expired_reservation_of_same_job_is_renewed(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.reserve("j1", None, 25_000)
    h.clock.advance(TTL + 1)
    await h.ledger.reserve("j1", None, 25_000)
    assert await h.ledger.reserved_micros() == 25_000


async def test_spent_counts_per_period(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.set_budget("global", "day", 30_000)
    await h.set_budget("global", "month", 60_000)
    await h.ledger.record(charge("j1", 25_000))
    with pytest.raises(BudgetExceeded, match="daily"):
        await h.ledger.reserve("j2", None, 25_000)
    h.clock.advance(DAY)  # new day, same month
    await h.ledger.reserve("j2", None, 25_000)
    await h.ledger.record(charge("j2", 25_000))
    await h.ledger.settle("j2")
    h.clock.advance(DAY)
    with pytest.raises(BudgetExceeded, match="monthly"):
        await h.ledger.reserve("j3", None, 25_000)
    h.clock.now = datetime(2026, 7, 1, 0, 0, 1, tzinfo=UTC).timestamp()  # new month
    await h.ledger.reserve("j3", None, 25_000)


async def test_unpriced_spend_does_not_count_as_spent(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.set_budget("global", "day", 25_000)
    await h.ledger.record(charge("j1", None))
    await h.ledger.reserve("j2", None, 25_000)


async def test_key_budget_only_limits_that_key(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.set_budget("key:k1", "day", 25_000)
    await h.set_budget("global", "day", 100_000)
    await h.ledger.reserve("a1", "k1", 25_000)
    with pytest.raises(BudgetExceeded, match="'k1'"):
        await h.ledger.reserve("a2", "k1", 25_000)
    await h.ledger.reserve("b1", "k2", 25_000)
    await h.ledger.reserve("c1", None, 25_000)
    await h.ledger.record(charge("d1", 25_000, key="k2"))
    with pytest.raises(BudgetExceeded, match="global daily"):
        await h.ledger.reserve("b2", "k2", 1)
    assert await h.ledger.reserved_micros("key:k1") == 25_000


async def test_concurrent_reserves_per_key_and_global(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.set_budget("key:k1", "day", 50_000)
    await h.set_budget("global", "day", 100_000)
    ledgers = h.siblings(3)

    async def attempt(i: int) -> bool:
        key = "k1" if i % 2 else "k2"
        try:
            await ledgers[i % 3].reserve(f"job{i}", key, 10_000)
        except BudgetExceeded:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(40)))
    assert results.count(True) == 10
    assert await h.ledger.reserved_micros("key:k1") <= 50_000
    assert await h.ledger.reserved_micros() == 100_000


async def test_no_budget_means_no_limit(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    await h.ledger.reserve("j1", "k1", 10**12)
    await h.ledger.reserve("j2", None, 10**12)
