"""Process roles for scale-out: ``pixelpipe worker`` and ``pixelpipe sweeper``.

A worker runs the dispatcher over the jobs table (claims are atomic, so any number may run). The
sweeper takes a lock first — a PostgreSQL advisory lock, or an flock on the data directory for
SQLite — so exactly one is active however many are started; the others wait as hot standbys.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import signal
from collections.abc import AsyncIterator

from sqlalchemy import text

from pixelpipe.bootstrap import Services, build_services
from pixelpipe.dispatcher import Dispatcher, run_sweeper
from pixelpipe.queue.local import LocalQueue
from pixelpipe.settings import Settings

log = logging.getLogger("pixelpipe.runner")
SWEEPER_LOCK_KEY = 0x50495850  # "PIXP"


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_worker(settings: Settings) -> None:
    svc = await build_services(settings)
    wakeup = svc.queue.wakeup if isinstance(svc.queue, LocalQueue) else asyncio.Event()
    dispatcher = Dispatcher(svc, wakeup)
    stop = _stop_event()
    task = asyncio.create_task(dispatcher.run())
    log.info("worker %s started", dispatcher.owner)
    try:
        await stop.wait()
    finally:
        await dispatcher.stop(grace_s=10.0)  # finish in-flight steps, hand back the rest
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await svc.aclose()


@contextlib.asynccontextmanager
async def sweeper_lock(svc: Services) -> AsyncIterator[None]:
    """Hold the one sweeper lock for as long as the block runs (waits until it is free)."""
    if svc.db.dialect == "postgresql":
        async with svc.db.writer.connect() as conn:
            lock = text("SELECT pg_try_advisory_lock(:k)")
            while not (await conn.execute(lock, {"k": SWEEPER_LOCK_KEY})).scalar():  # noqa: ASYNC110
                await asyncio.sleep(1.0)  # polling an advisory lock
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SWEEPER_LOCK_KEY})
                await conn.commit()
        return
    path = svc.settings.data_dir / "sweeper.lock"
    with path.open("w") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(1.0)  # polling a file lock
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


async def run_sweeper_process(settings: Settings) -> None:
    svc = await build_services(settings)
    stop = _stop_event()
    try:
        async with sweeper_lock(svc):
            log.info("sweeper %s holds the lock", svc.instance)
            task = asyncio.create_task(run_sweeper(svc))
            await stop.wait()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await svc.aclose()
