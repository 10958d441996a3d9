"""The fast formatters on the hot path agree with the standard library, value for value."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from pixelpipe.jobs.ids import ID_RE, new_job_id
from pixelpipe.ledger.policy import decimal_usd, utc_day
from pixelpipe.notify.public import iso

EDGES = [0.0, 1.0, 0.9995, 0.9999996, 1795304402.9999996, 1795304402.0004999, 86_399.9999995]


def _reference_iso(ts: float) -> str:
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@pytest.mark.parametrize("ts", EDGES)
def test_iso_matches_datetime_at_the_edges(ts: float) -> None:
    assert iso(ts) == _reference_iso(ts)


def test_iso_matches_datetime_for_random_times() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        ts = rng.uniform(0, 4_102_444_800)  # 1970 .. 2100
        assert iso(ts) == _reference_iso(ts), ts
    assert iso(None) is None


def test_utc_day_matches_datetime() -> None:
    rng = random.Random(8)
    for ts in [0.0, 86_399.999, 86_400.0, *[rng.uniform(0, 4_102_444_800) for _ in range(5000)]]:
        assert utc_day(ts) == datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d"), ts


@pytest.mark.parametrize(
    ("micros", "text"), [(0, "0.00"), (3_000, "0.003"), (10_000_000, "10.00"), (250_000, "0.25")]
)
def test_decimal_usd(micros: int, text: str) -> None:
    assert decimal_usd(micros) == text


def test_job_ids_are_unique_sortable_and_well_formed() -> None:
    ids = [new_job_id(1795304402.5) for _ in range(3000)]  # > one random pool's worth
    assert len(set(ids)) == len(ids)
    assert all(ID_RE.match(i) for i in ids)
    assert new_job_id(1.0) < new_job_id(2.0)
