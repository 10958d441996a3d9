"""Live places: a waiting job's readers are told when its place in the queue moves.

One task per process, running while any reader follows a job, reads the places of all the
followed jobs that wait once every :data:`TICK_S` (one read of the queue's order, plus one of each
backend's line they are in: :func:`~pixelpipe.usecases.queue_place.with_places`) and hands
each reader its job's new place (:class:`~pixelpipe.jobs.watched.Moves`); the reader's stream
sends it as a ``progress`` event with its ETA. So a place moves on screen at most once a second,
and a thousand readers cost one read a second, not a thousand polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from pixelpipe.jobs.watched import Moves
from pixelpipe.services import Services
from pixelpipe.usecases.queue_place import with_places

TICK_S = 1.0  # the places are read this often (at most one move a second per job)
log = logging.getLogger("pixelpipe.queue")


@contextlib.asynccontextmanager
async def watching(svc: Services, job_id: str) -> AsyncIterator[Moves]:
    """Follow ``job_id``'s place while inside: the :class:`Moves` has each new one."""
    moves = svc.watched.add(job_id)
    task = svc.watched.task
    if task is None or task.done():
        svc.watched.task = asyncio.create_task(_tell_while_watched(svc))
    try:
        yield moves
    finally:
        svc.watched.discard(job_id, moves)


async def tell_places(svc: Services) -> None:
    """One round: every followed job that waits, at its place now, offered to its readers."""
    ids = svc.watched.ids()
    if not ids:
        return
    for job in await with_places(svc, await svc.store.jobs_by_ids(ids)):
        for moves in svc.watched.readers(job.id):
            moves.offer(job)


async def _tell_while_watched(svc: Services) -> None:
    while svc.watched.ids():
        await asyncio.sleep(TICK_S)
        try:
            await tell_places(svc)
        except Exception:  # a failed read: the next round reads again
            log.warning("reading the queue's places failed", exc_info=True)
