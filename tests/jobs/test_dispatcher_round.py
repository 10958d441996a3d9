"""The dispatcher always yields: even when queue deliveries overfilled its slots."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pixelpipe.bootstrap import build_services
from pixelpipe.dispatcher import Dispatcher
from pixelpipe.settings import Settings


async def test_round_sleeps_when_slots_are_overfilled(tmp_path: Path) -> None:
    svc = await build_services(Settings(data_dir=tmp_path, worker_concurrency=1))  # type: ignore[call-arg]
    try:
        d = Dispatcher(svc, asyncio.Event())
        blockers = [asyncio.create_task(asyncio.sleep(10)) for _ in range(2)]
        d.running.update(blockers)  # two steps running, capacity one: free = -1
        # a round must wait (for a wake-up or the idle timeout), not return at once
        round_task = asyncio.create_task(d._round())
        await asyncio.sleep(0.2)
        assert not round_task.done()
        d.wakeup.set()
        await asyncio.wait_for(round_task, 2)
        for t in blockers:
            t.cancel()
    finally:
        await svc.aclose()
