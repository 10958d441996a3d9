"""Provider webhook deliveries in memory: a set of (provider, delivery id)."""

from __future__ import annotations

from pixelpipe.jobs.memory.base import MemoryStoreBase


class MemoryProviderDeliveries(MemoryStoreBase):
    async def record_delivery(self, provider: str, delivery_id: str, job_id: str | None) -> bool:
        seen = self._tables.deliveries
        if (provider, delivery_id) in seen:
            return False
        seen.add((provider, delivery_id))
        return True

    async def forget_delivery(self, provider: str, delivery_id: str) -> None:
        self._tables.deliveries.discard((provider, delivery_id))
