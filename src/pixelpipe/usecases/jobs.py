"""One job: get, list, cancel, delete (its events: :mod:`.events`)."""

from __future__ import annotations

import logging

from pixelpipe.errors import Conflict, Forbidden, NotFound, PixelpipeError
from pixelpipe.jobs.ids import is_job_id
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.events import with_progress
from pixelpipe.usecases.queue_place import with_live_place
from pixelpipe.usecases.submit import announce_finished
from pixelpipe.worker import cancel_run
from pixelpipe.worker.kept import drop_kept_outputs

log = logging.getLogger("pixelpipe.usecases.jobs")


async def get_job(svc: Services, job_id: str) -> Job:
    job = await svc.store.get(job_id) if is_job_id(job_id) else None
    if job is None:
        raise NotFound(f"no generation with id {job_id!r}")
    return await with_progress(svc, await with_live_place(svc, job))


def check_owner(job: Job, caller: Caller, action: str = "delete") -> None:
    """A keyed caller acts only on its own key's jobs (an admin key on any). Jobs started with
    auth off belong to no key: only an admin key may act on them once keys exist."""
    if caller.key_id is None or caller.admin or job.api_key_id == caller.key_id:
        return
    started = "with another API key" if job.api_key_id else "without a key (before keys were on)"
    only = "that key or an admin key" if job.api_key_id else "an admin key"
    raise Forbidden(
        f"generation {job.id} was started {started}; only {only} may {action} it",
        required_scope="admin",
    )


async def delete(svc: Services, job_id: str, *, caller: Caller = Caller()) -> None:
    """Delete a finished job. Its image is deleted from storage only when no other job (a
    cache hit, a repeat) shares it. Ledger entries stay: what was spent stays spent. Deleting
    again is a no-op; an id that never existed raises NotFound."""
    job = await svc.store.get(job_id) if is_job_id(job_id) else None
    if job is not None:
        check_owner(job, caller)
    done = await svc.store.delete(job_id) if is_job_id(job_id) else None
    if done is None or not done.found:
        raise NotFound(f"no generation with id {job_id!r}")
    for key in done.orphaned:
        try:
            await svc.storage.delete(key)
        except PixelpipeError as exc:  # the index row is gone: a leftover object is harmless
            log.warning("deleting stored object %s failed: %s", key, type(exc).__name__)
    if not done.already:
        await svc.boards.forget_jobs([job_id])  # it leaves every board and favourites list
        log.info("deleted %s (%d stored objects freed)", job_id, len(done.orphaned))


async def cancel(svc: Services, job_id: str) -> Job:
    moved = None
    for _ in range(5):  # a worker may move the job between our read and our guarded write
        job = await get_job(svc, job_id)
        if job.status.terminal:
            raise Conflict(f"generation {job_id} already {job.status}; nothing to cancel")
        moved = await svc.store.transition(
            job_id, job.status, JobStatus.CANCELED, error_code="canceled", error_detail="canceled"
        )
        if moved is not None:
            break
    if moved is None:
        return await get_job(svc, job_id)  # it kept moving: report where it is
    await svc.ledger.release(job_id)
    await drop_kept_outputs(svc, moved)
    await announce_finished(svc, moved)
    if job.provider_job_id:  # best effort: the job is canceled on our side anyway
        await cancel_run(svc, job, job.provider_job_id)
    return moved


async def list_jobs(
    svc: Services,
    *,
    before: str | None = None,
    limit: int = 30,
    model: str | None = None,
    query: str | None = None,
    group: str | None = None,
    status: str | None = None,
) -> tuple[list[Job], str | None]:
    """A page of jobs, newest first, and the cursor of the next page (None on the last)."""
    jobs = await svc.store.list_jobs(
        before=before, limit=limit + 1, model=model, query=query, group=group, status=status
    )
    page = jobs[:limit]
    return page, page[-1].id if len(jobs) > limit else None
