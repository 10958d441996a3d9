"""Provider webhook deliveries in SQL: the (provider, delivery id) primary key dedups them."""

from __future__ import annotations

import time

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from pixelpipe.jobs.sql.base import SqlStoreBase
from pixelpipe.jobs.tables import webhook_deliveries

_D = webhook_deliveries.c


class SqlProviderDeliveries(SqlStoreBase):
    async def record_delivery(self, provider: str, delivery_id: str, job_id: str | None) -> bool:
        def work(conn: Connection) -> bool:
            seen = conn.execute(
                select(_D.delivery_id).where(_D.provider == provider, _D.delivery_id == delivery_id)
            ).first()
            if seen is not None:
                return False
            conn.execute(
                insert(webhook_deliveries).values(
                    provider=provider,
                    delivery_id=delivery_id,
                    job_id=job_id,
                    received_at=time.time(),
                )
            )
            return True

        try:
            return await self.db.write(work)
        except IntegrityError:
            return False

    async def forget_delivery(self, provider: str, delivery_id: str) -> None:
        stmt = delete(webhook_deliveries).where(
            _D.provider == provider, _D.delivery_id == delivery_id
        )
        await self.db.write(lambda conn: conn.execute(stmt))
