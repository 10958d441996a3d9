"""Submit many generations and wait for them: the OpenAI endpoint (``n`` images), ``pixelpipe
batch``/``compare`` in-process, and ``Pipeline.generate``.

:func:`submit_many` is all-or-nothing: if one request is refused, the jobs it already started
are canceled before the refusal is raised. :func:`wait_many` waits for every job (finished ones,
such as cache hits, cost nothing) and raises ``TimeoutError`` when one is not done in time — the
jobs keep running.
"""

from __future__ import annotations

import asyncio

from pixelpipe.errors import PixelpipeError
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import Job
from pixelpipe.notify.hooks import wait_finished
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.jobs import cancel
from pixelpipe.usecases.submit import Submission, submit


async def submit_many(
    svc: Services, bodies: list[GenerationRequest], *, caller: Caller = Caller()
) -> list[Submission]:
    """Submit each request in order; if one is refused, cancel the jobs this call started (and
    that are still running), then raise the refusal."""
    subs: list[Submission] = []
    kind = "batch" if len(bodies) > 1 else "interactive"  # default priority (docs/queue.md)
    try:
        for body in bodies:
            subs.append(await submit(svc, body, caller=caller, kind=kind))
    except PixelpipeError:
        for sub in subs:
            if sub.created and not sub.job.status.terminal:
                try:
                    await cancel(svc, sub.job.id)
                except PixelpipeError:
                    pass  # finished meanwhile
        raise
    return subs


async def wait_many(svc: Services, jobs: list[Job], *, timeout_s: float | None) -> list[Job]:
    """Every job once terminal, in the order given (TimeoutError after ``timeout_s``)."""
    if all(job.status.terminal for job in jobs):  # cache hits: nothing to wait for
        return jobs

    async def one(job: Job) -> Job:
        if job.status.terminal:
            return job
        return await wait_finished(svc, job.id, timeout_s=timeout_s)

    return list(await asyncio.gather(*(one(j) for j in jobs)))


async def submit_many_and_wait(
    svc: Services,
    bodies: list[GenerationRequest],
    *,
    caller: Caller = Caller(),
    timeout_s: float | None,
) -> list[Job]:
    subs = await submit_many(svc, bodies, caller=caller)
    return await wait_many(svc, [s.job for s in subs], timeout_s=timeout_s)
