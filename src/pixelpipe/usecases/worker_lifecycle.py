"""The worker's lifecycle in this process: start the dispatcher (plus the sweeper, the completion
webhook deliveries, the self-hosted backends' health checks and, in a worker process, the
queue's consumer) and stop them in order.

``serve`` and ``Pipeline`` run :func:`embedded_worker` (only with the embedded queue: with a
message queue, worker processes run the steps); ``pixelpipe worker`` runs :func:`running_worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from pixelpipe.backend_health import run_health_checks
from pixelpipe.dispatcher import Dispatcher, run_sweeper
from pixelpipe.notify.deliver import start_delivery
from pixelpipe.services import Services

CONSUMER_MAX_CONCURRENCY = 16  # a message handler only claims a row and hands it over


@contextlib.asynccontextmanager
async def embedded_worker(svc: Services, *, grace_s: float) -> AsyncIterator[Dispatcher | None]:
    """Dispatcher, sweeper and webhook deliveries beside the API or ``Pipeline`` while the block
    runs (None, and nothing started, when the queue is not embedded)."""
    if not svc.queue.embedded:
        yield None
        return
    async with running_worker(svc, grace_s=grace_s, sweep=True, consume=False) as dispatcher:
        yield dispatcher


@contextlib.asynccontextmanager
async def running_worker(
    svc: Services, *, grace_s: float, sweep: bool, consume: bool
) -> AsyncIterator[Dispatcher]:
    """Run the steps of due jobs while the block runs.

    ``sweep``: also run the sweeper loop here (the embedded worker; worker processes leave it to
    ``pixelpipe sweeper``). ``consume``: also take the queue's messages (a worker process), which
    only make a step start sooner — the dispatcher's scan of due rows guarantees progress.
    On exit: stop taking messages, finish in-flight steps (``grace_s``), hand back the leases."""
    dispatcher = Dispatcher(svc, svc.queue.wakeup)
    tasks = [asyncio.create_task(dispatcher.run())]
    if sweep:
        tasks.append(asyncio.create_task(run_sweeper(svc, svc.queue.wakeup)))
    tasks.append(start_delivery(svc))  # completion webhooks (pixelpipe.notify)
    tasks.append(asyncio.create_task(run_health_checks(svc)))  # self-hosted backends, if any
    consumer = None
    try:
        if consume:
            consumer = svc.queue.consumer(
                dispatcher.offer,
                concurrency=min(CONSUMER_MAX_CONCURRENCY, svc.settings.worker_concurrency),
                worker_id=dispatcher.owner,
            )
            if consumer is not None:
                await consumer.start()
        yield dispatcher
    finally:
        if consumer is not None:
            await consumer.stop()  # no new messages; the rows stay claimable by others
        await dispatcher.stop(grace_s=grace_s)  # finish in-flight steps, hand back the rest
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
