"""What every stage of a step shares: the services, the lease owner, and which leases ended."""

from __future__ import annotations

from dataclasses import dataclass, field

from pixelpipe.jobs.model import Job
from pixelpipe.services import Services


@dataclass
class StepContext:
    svc: Services
    owner: str  # the lease holder this worker's steps run as
    # jobs whose terminal transition (run here) cleared the lease: nothing left to release
    ended: set[str] = field(default_factory=set)

    async def finished(self, job: Job) -> None:
        """``job`` reached the end of a transition made here: count it, tell the hooks."""
        if job.status.terminal:
            self.ended.add(job.id)
        self.svc.metrics.finished.labels(str(job.status)).inc()
        if self.svc.completion_hooks is not None:
            await self.svc.completion_hooks.job_finished(job)
