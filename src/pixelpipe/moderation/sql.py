"""The moderation log on SQLite or PostgreSQL (the job store's database)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from pixelpipe.db import Database
from pixelpipe.ledger.policy import utc_day
from pixelpipe.moderation.base import Action, Kind, ModerationEvent, ModerationRow
from pixelpipe.moderation.tables import moderation_events

_M = moderation_events.c


class SqlModerationLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, event: ModerationEvent) -> bool:
        values = _values(event)
        return await self.db.write(lambda conn: _insert_ignore(conn, values))

    async def report(
        self, *, since: float | None = None, until: float | None = None
    ) -> list[ModerationRow]:
        key = func.coalesce(_M.api_key_id, "")
        query = select(
            _M.day,
            key,
            _M.kind,
            _M.action,
            func.count(),
            func.coalesce(func.sum(_M.amount_micros), 0),
            func.count().filter((_M.kind == "image") & _M.amount_micros.is_(None)),
        )
        if since is not None:
            query = query.where(_M.created_at >= since)
        if until is not None:
            query = query.where(_M.created_at < until)
        query = query.group_by(_M.day, key, _M.kind, _M.action).order_by(
            _M.day, key, _M.kind, _M.action
        )
        rows = await self.db.read_sync(lambda conn: conn.execute(query).all())
        return [_row(r) for r in rows]

    async def expired_quarantine(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        query = (
            select(_M.job_id, _M.quarantine_key)
            .where(_M.quarantine_key.is_not(None), _M.quarantine_until <= now)
            .order_by(_M.quarantine_until)
            .limit(limit)
        )
        rows = await self.db.read_sync(lambda conn: conn.execute(query).all())
        return [(str(r[0]), str(r[1])) for r in rows]

    async def released(self, job_id: str) -> None:
        stmt = (
            update(moderation_events)
            .where(_M.job_id == job_id)
            .values(quarantine_key=None, quarantine_until=None)
        )
        await self.db.write(lambda conn: conn.execute(stmt))


def _values(e: ModerationEvent) -> dict[str, Any]:
    return {
        "kind": e.kind,
        "action": e.action,
        "source": e.source,
        "api_key_id": e.api_key_id,
        "job_id": e.job_id,
        "categories": list(e.categories),
        "amount_micros": e.amount_micros,
        "day": utc_day(e.created_at),
        "created_at": e.created_at,
        "quarantine_key": e.quarantine_key,
        "quarantine_until": e.quarantine_until,
    }


def _insert_ignore(conn: Connection, values: dict[str, Any]) -> bool:
    name = conn.dialect.name
    if name == "postgresql":
        stmt: Any = postgresql.insert(moderation_events).on_conflict_do_nothing()
    elif name == "sqlite":
        stmt = sqlite.insert(moderation_events).on_conflict_do_nothing()
    else:  # pragma: no cover - the two dialects pixelpipe runs on
        try:
            with conn.begin_nested():
                conn.execute(moderation_events.insert().values(values))
        except IntegrityError:
            return False
        return True
    return conn.execute(stmt.values(values).returning(_M.id)).first() is not None


def _row(r: Any) -> ModerationRow:
    kind: Kind = "image" if r[2] == "image" else "prompt"
    action: Action = r[3]
    return ModerationRow(
        str(r[0]), str(r[1]) or None, kind, action, int(r[4]), int(r[5]), int(r[6])
    )
