"""Embedded queue: the jobs table *is* the queue; enqueue just wakes the in-process dispatcher."""

from __future__ import annotations

import asyncio


class LocalQueue:
    def __init__(self) -> None:
        self.wakeup = asyncio.Event()

    async def enqueue(self, job_id: str, *, delay_s: float = 0.0) -> None:
        self.wakeup.set()

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self.wakeup.set()
