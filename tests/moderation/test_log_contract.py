"""The ModerationLog contract, run against the in-memory log and the SQL one (SQLite through the
migrations; PostgreSQL too when the suite's server fixture is available)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pixelpipe.db import open_database
from pixelpipe.migrations.runner import upgrade
from pixelpipe.moderation.base import ModerationEvent, ModerationLog, ModerationRow
from pixelpipe.moderation.memory import MemoryModerationLog
from pixelpipe.moderation.sql import SqlModerationLog
from tests.ledger.conftest import _fresh_postgres_database, postgres_uri  # noqa: F401 - fixture

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ModerationLog]:
    if request.param == "memory":
        yield MemoryModerationLog()
        return
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    else:
        url = _fresh_postgres_database(request.getfixturevalue("postgres_uri"))
    upgrade(url)
    db = open_database(url)
    try:
        yield SqlModerationLog(db)
    finally:
        await db.dispose()


def image(
    job: str, action: str = "blocked", amount: int | None = 3_000, **kw: object
) -> ModerationEvent:
    return ModerationEvent(
        "image",
        action,
        "moderation",
        kw.pop("key", "k1"),
        ("sexual",),
        T0,
        job,
        amount,
        **kw,  # type: ignore[arg-type]
    )


def prompt(key: str | None, at: float = T0) -> ModerationEvent:
    return ModerationEvent("prompt", "refused", "moderation", key, ("violence",), at)


async def test_implements_the_protocol(log: ModerationLog) -> None:
    assert isinstance(log, ModerationLog)


async def test_an_image_event_is_kept_once_per_job(log: ModerationLog) -> None:
    assert await log.add(image("j1")) is True
    assert await log.add(image("j1")) is False  # the step ran again after a crash
    [row] = await log.report()
    assert (row.count, row.spent_micros) == (1, 3_000)


async def test_prompt_refusals_are_each_counted(log: ModerationLog) -> None:
    for _ in range(3):
        assert await log.add(prompt("k1")) is True
    assert await log.report() == [ModerationRow("2026-06-15", "k1", "prompt", "refused", 3, 0, 0)]


async def test_report_groups_by_day_key_kind_and_action(log: ModerationLog) -> None:
    await log.add(prompt("k1"))
    await log.add(prompt(None))
    await log.add(prompt("k1", T0 + DAY))
    await log.add(image("j1"))
    await log.add(image("j2", amount=None))
    await log.add(image("j3", "blurred", key="k2"))
    assert await log.report() == [
        ModerationRow("2026-06-15", None, "prompt", "refused", 1, 0, 0),
        ModerationRow("2026-06-15", "k1", "image", "blocked", 2, 3_000, 1),
        ModerationRow("2026-06-15", "k1", "prompt", "refused", 1, 0, 0),
        ModerationRow("2026-06-15", "k2", "image", "blurred", 1, 3_000, 0),
        ModerationRow("2026-06-16", "k1", "prompt", "refused", 1, 0, 0),
    ]
    since = await log.report(since=T0 + 1)
    assert [r.day for r in since] == ["2026-06-16"]
    assert await log.report(until=T0) == []


async def test_quarantine_expires_and_is_released(log: ModerationLog) -> None:
    await log.add(image("j1", quarantine_key="quarantine/j1.png", quarantine_until=T0 + 60))
    await log.add(image("j2", quarantine_key="quarantine/j2.png", quarantine_until=T0 + 600))
    await log.add(image("j3"))  # not kept
    assert await log.expired_quarantine(T0) == []
    assert await log.expired_quarantine(T0 + 61) == [("j1", "quarantine/j1.png")]
    await log.released("j1")
    assert await log.expired_quarantine(T0 + 601) == [("j2", "quarantine/j2.png")]
    [row] = await log.report()
    assert row.count == 3  # releasing the bytes keeps the event
