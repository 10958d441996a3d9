"""Retry a failed or canceled generation: a new job with the same request, linked to the one it
retries (``retry_of``). It goes through every stage again (safety, inputs, content key, cache,
budget): the old job's inputs are still stored, and a retry of a request whose image exists by now
is a cache hit like any other."""

from __future__ import annotations

from pixelpipe.errors import Conflict
from pixelpipe.inputs import upload_id
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.jobs import check_owner, get_job
from pixelpipe.usecases.submit import Submission, submit

RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELED})


async def retry(svc: Services, job_id: str, *, caller: Caller = Caller()) -> Submission:
    """A new job for ``job_id``'s request, ``retry_of`` it; Conflict unless it failed or was
    canceled, Forbidden for another key's job."""
    job = await get_job(svc, job_id)
    check_owner(job, caller, "retry")
    if job.status not in RETRYABLE:
        what = "it succeeded" if job.status is JobStatus.SUCCEEDED else "it has not finished"
        raise Conflict(
            f"generation {job_id} is {job.status}: {what}; only a failed or canceled "
            "generation can be retried"
        )
    return await submit(svc, request_of(job), caller=caller, retry_of=job.id)


def request_of(job: Job) -> GenerationRequest:
    """The request that makes ``job``'s canonical request again."""
    req = job.request
    return GenerationRequest(
        prompt=req.prompt,
        model=req.model,
        size=req.size,
        seed=req.seed,
        format=req.format,
        quality=req.quality,
        steps=req.steps,
        guidance=req.guidance,
        negative_prompt=req.negative_prompt,
        group=job.group_id,
        webhook=job.webhook_url,
        images=[upload_id(d) for d in req.images] or None,
        mask=upload_id(req.mask) if req.mask else None,
        strength=req.strength,
        input_fidelity=req.input_fidelity,
    )
