"""What every part of the in-memory job store shares: its tables and the notifier."""

from __future__ import annotations

from pixelpipe.events.base import ALL, Notifier
from pixelpipe.jobs.memory.tables import MemoryTables


class MemoryStoreBase:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self._tables = MemoryTables()

    async def ping(self) -> None:
        return None

    async def _wake(self, job_id: str) -> None:
        await self.notifier.publish(f"job:{job_id}", "changed")
        await self.notifier.publish(ALL, job_id)
