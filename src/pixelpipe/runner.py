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
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import text

from pixelpipe.bootstrap import build_services
from pixelpipe.dispatcher import sweep_once
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.worker_lifecycle import running_worker

log = logging.getLogger("pixelpipe.runner")
SWEEPER_LOCK_KEY = 0x50495850  # "PIXP"


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_worker(settings: Settings) -> None:
    """Table-claiming dispatcher, plus the SAQ consumer when ``PIXELPIPE_QUEUE_URL`` is set.

    Queue messages only make a step start sooner (``Dispatcher.offer``); the dispatcher's scan
    of due rows is what guarantees progress, so a lost message delays a job by at most a second.
    On SIGTERM: stop taking messages, finish in-flight steps (10 s), hand back remaining leases.
    """
    svc = await build_services(settings)
    stop = _stop_event()
    try:
        async with running_worker(svc, grace_s=10.0, sweep=False, consume=True) as dispatcher:
            log.info("worker %s started (%s)", dispatcher.owner, type(svc.queue).__name__)
            await stop.wait()
    finally:
        await svc.aclose()


@contextlib.asynccontextmanager
async def sweeper_lock(svc: Services) -> AsyncIterator[Callable[[], Awaitable[bool]]]:
    """Hold the one sweeper lock for as long as the block runs (waits until it is free).

    Yields ``still_held()``: on PostgreSQL the lock lives as long as its session, so a sweeper
    whose lock connection died must stop (another may have taken over). On exit the session is
    closed rather than returned to the pool, so the lock can never linger on a pooled connection.
    """
    if svc.db.dialect == "postgresql":
        conn = await svc.db.writer.connect()
        try:
            lock = text("SELECT pg_try_advisory_lock(:k)")
            while not (await conn.execute(lock, {"k": SWEEPER_LOCK_KEY})).scalar():
                await conn.commit()
                await asyncio.sleep(1.0)  # polling an advisory lock
            await conn.commit()

            async def still_held() -> bool:
                try:
                    held = await conn.execute(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                            " AND pid = pg_backend_pid() AND objid::bigint = :k AND objsubid = 1"
                        ),
                        {"k": SWEEPER_LOCK_KEY},
                    )
                    ok = bool(held.scalar())
                    await conn.commit()
                    return ok
                except Exception:
                    return False

            yield still_held
        finally:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # closing the session releases the lock
            with contextlib.suppress(Exception):
                await conn.close()
        return
    path = svc.settings.data_dir / "sweeper.lock"
    with path.open("w") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(1.0)  # polling a file lock

        async def always() -> bool:
            return True

        try:
            yield always
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


async def _sweep_while_leader(svc: Services) -> None:
    while True:
        log.info("sweeper %s started; waiting for the sweeper lock", svc.instance)
        async with sweeper_lock(svc) as still_held:
            log.info("sweeper %s holds the lock", svc.instance)
            while True:
                try:
                    await sweep_once(svc)
                except Exception:
                    log.exception("sweep failed; will try again")
                await asyncio.sleep(svc.settings.sweep_interval_s)
                if not await still_held():
                    log.warning("sweeper %s lost its lock; standing by", svc.instance)
                    break


async def run_sweeper_process(settings: Settings) -> None:
    """Stand by until this process holds the sweeper lock, then sweep until SIGTERM."""
    svc = await build_services(settings)
    stop = _stop_event()
    work = asyncio.create_task(_sweep_while_leader(svc))
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (work, waiter):
            t.cancel()
        await asyncio.gather(work, waiter, return_exceptions=True)
        await svc.aclose()
