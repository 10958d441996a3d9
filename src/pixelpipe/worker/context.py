"""What every stage of a step shares: the services, the lease owner, and which leases ended."""

from __future__ import annotations

from dataclasses import dataclass, field

from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.services import Services
from pixelpipe.worker.kept import drop_kept_outputs


@dataclass
class StepContext:
    svc: Services
    owner: str  # the lease holder this worker's steps run as
    # jobs whose terminal transition (run here) cleared the lease: nothing left to release
    ended: set[str] = field(default_factory=set)
    # jobs handed over in memory whose admission opened their attempt (worker.submit.opening):
    # submitting, and not yet sent — never a crashed submit to resume
    opened: set[str] = field(default_factory=set)

    async def finished(self, job: Job) -> None:
        """``job`` reached the end of a transition made here: count it, tell the hooks; one
        that ended without an image no longer needs the outputs it kept."""
        if job.status.terminal:
            self.ended.add(job.id)
        if job.status in (JobStatus.FAILED, JobStatus.CANCELED):
            await drop_kept_outputs(self.svc, job)
        self.svc.metrics.finished.labels(str(job.status)).inc()
        if self.svc.completion_hooks is not None:
            await self.svc.completion_hooks.job_finished(job)
