"""The ``completion_webhooks`` outbox: one row per job that asked for a completion webhook.

A row is written when the job finishes (``pending``, due now) and is then claimed by a delivery
loop: the claim pushes ``next_attempt_at`` past the request timeout (a lease — a crashed sender's
rows come back by themselves) and counts the attempt. The outcome is ``delivered``, another
``pending`` with a later ``next_attempt_at``, or ``failed`` (gave up: schedule exhausted, 410 Gone,
or a refused destination). Row id = the ``webhook-id`` header, stable across attempts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from pixelpipe.db import Database, metadata

completion_webhooks = Table(
    "completion_webhooks",
    metadata,
    Column("id", String(64), primary_key=True),  # webhook-id: msg_<job id>
    Column("job_id", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("payload", Text, nullable=False),  # the exact body sent on every attempt
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("delivered_at", Float),
    Index("ix_completion_webhooks_due", "status", "next_attempt_at"),
    Index("ix_completion_webhooks_job", "job_id"),
)
_W = completion_webhooks.c

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    job_id: str
    url: str
    event_type: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    created_at: float
    delivered_at: float | None


_DELIVERY_FIELDS = tuple(f.name for f in fields(Delivery))


def _row(row: Any) -> Delivery:
    m = row._mapping
    values = {name: m[name] for name in _DELIVERY_FIELDS}
    values["attempts"] = int(values["attempts"])
    return Delivery(**values)


def message_id(job_id: str) -> str:
    return f"msg_{job_id}"


class Outbox:
    """SQL access to the outbox (SQLite and PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, job_id: str, url: str, event_type: str, payload: str) -> bool:
        """Queue the webhook of a finished job; False when it was already queued (idempotent)."""
        now = time.time()
        values = {
            "id": message_id(job_id),
            "job_id": job_id,
            "url": url,
            "event_type": event_type,
            "payload": payload,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.db.begin() as conn:
                seen = await conn.execute(select(_W.id).where(_W.id == values["id"]))
                if seen.first() is not None:
                    return False
                await conn.execute(insert(completion_webhooks).values(**values))
        except IntegrityError:
            return False
        return True

    async def claim_due(self, *, limit: int, lease_s: float) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries (one attempt each is counted now)."""
        now = time.time()
        due = and_(_W.status == PENDING, _W.next_attempt_at <= now)
        pick = (
            select(_W.id)
            .where(due)
            .order_by(_W.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.db.begin() as conn:
            ids = [r[0] for r in (await conn.execute(pick)).all()]
            if not ids:
                return []
            res = await conn.execute(
                update(completion_webhooks)
                .where(_W.id.in_(ids), due)
                .values(next_attempt_at=now + lease_s, attempts=_W.attempts + 1, updated_at=now)
                .returning(completion_webhooks)
            )
            return [_row(r) for r in res.all()]

    async def delivered(self, msg_id: str, status_code: int) -> None:
        now = time.time()
        await self._set(
            msg_id,
            status=DELIVERED,
            next_attempt_at=None,
            last_status=status_code,
            last_error=None,
            delivered_at=now,
        )

    async def retry_at(self, msg_id: str, when: float, status_code: int | None, error: str) -> None:
        await self._set(msg_id, next_attempt_at=when, last_status=status_code, last_error=error)

    async def give_up(self, msg_id: str, status_code: int | None, error: str) -> None:
        await self._set(
            msg_id, status=FAILED, next_attempt_at=None, last_status=status_code, last_error=error
        )

    async def get(self, msg_id: str) -> Delivery | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(completion_webhooks).where(_W.id == msg_id))).first()
        return _row(row) if row else None

    async def for_job(self, job_id: str) -> Delivery | None:
        return await self.get(message_id(job_id))

    async def next_due_at(self) -> float | None:
        stmt = select(func.min(_W.next_attempt_at)).where(_W.status == PENDING)
        async with self.db.read() as conn:
            value = (await conn.execute(stmt)).scalar()
        return float(value) if value is not None else None

    async def _set(self, msg_id: str, **values: Any) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                update(completion_webhooks)
                .where(_W.id == msg_id)
                .values(updated_at=time.time(), **values)
            )
