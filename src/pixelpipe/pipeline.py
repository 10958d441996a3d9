"""In-process pipeline for scripts and the CLI: the whole service with its own worker.

>>> import asyncio
>>> from pixelpipe import Pipeline
>>> async def main() -> None:
...     async with Pipeline() as p:
...         result = await p.generate("a red fox in the snow", model="preview", seed=7)
...         print(result.job.status, result.url, len(result.image or b""))
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pixelpipe.bootstrap import build_services
from pixelpipe.errors import ERROR_CODES, ConfigError, PixelpipeError
from pixelpipe.intake import new_request
from pixelpipe.jobs.model import Job
from pixelpipe.notify.hooks import wait_finished
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.settings import Settings, load_settings
from pixelpipe.usecases.batch import submit_many_and_wait
from pixelpipe.usecases.estimate import Estimate, estimate
from pixelpipe.usecases.images import image_bytes, local_image_url
from pixelpipe.usecases.jobs import cancel, get_job
from pixelpipe.usecases.submit import submit
from pixelpipe.usecases.worker_lifecycle import embedded_worker


@dataclass(frozen=True, slots=True)
class GenerationResult:
    job: Job
    url: str | None  # the stored image: file:// (local storage), the bucket's URL, or public URL
    image: bytes | None  # the stored bytes (when the job succeeded)

    @property
    def cost_usd(self) -> float | None:
        return None if self.job.cost_micros is None else self.job.cost_micros / 1_000_000


class Pipeline:
    """Runs submit → worker → storage in this process (embedded backends by default).

    Settings come from the environment (``PIXELPIPE_*``, as for ``pixelpipe serve``) unless
    given; the same data directory can be shared with a server, which then shows these jobs.
    ``worker=False`` only submits (a separate ``pixelpipe worker`` runs the jobs).

    Example::

        from pixelpipe import Pipeline
        from pixelpipe.settings import load_settings

        async with Pipeline(load_settings(data_dir="/tmp/pp")) as p:
            result = await p.generate("a red fox", model="preview", seed=7, size="512x512")
            open("fox.webp", "wb").write(result.image or b"")
            job = await p.submit("a blue fox", seed=7)  # returns at once
            job = await p.wait(job.id, timeout_s=60)
    """

    def __init__(self, settings: Settings | None = None, *, worker: bool = True) -> None:
        self.settings = settings or load_settings()
        self._worker = worker
        self._svc: Services | None = None
        self._running: contextlib.AsyncExitStack | None = None  # services, then the worker

    @property
    def services(self) -> Services:
        if self._svc is None:
            raise ConfigError("use `async with Pipeline() as p:` before calling it")
        return self._svc

    async def __aenter__(self) -> Pipeline:
        running = contextlib.AsyncExitStack()
        svc = await build_services(self.settings)
        running.push_async_callback(svc.aclose)
        if self._worker:
            try:
                await running.enter_async_context(embedded_worker(svc, grace_s=2.0))
            except BaseException:
                await running.aclose()
                raise
        self._svc, self._running = svc, running
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        running, self._running, self._svc = self._running, None, None
        if running is not None:
            await running.aclose()  # the worker stops (in-flight steps get 2 s), then services

    async def submit(self, prompt: str, **params: Any) -> Job:
        """Start a generation (fields as for ``POST /v1/generations``); returns the job at once.

        A cache hit comes back already ``succeeded`` (``job.cached``); an identical request in
        flight returns that job (single-flight).
        """
        body = new_request(prompt, **params)
        return (await submit(self.services, body, caller=Caller())).job

    async def wait(self, job_id: str, *, timeout_s: float | None = None) -> Job:
        """Wait until the job is terminal and return it (``TimeoutError`` after ``timeout_s``)."""
        await get_job(self.services, job_id)  # NotFound for an unknown id
        return await wait_finished(self.services, job_id, timeout_s=timeout_s)

    async def generate(
        self,
        prompt: str,
        *,
        timeout_s: float | None = None,
        raise_on_failure: bool = True,
        **params: Any,
    ) -> GenerationResult:
        """Submit and wait; returns the job, its URL and the image bytes."""
        body = new_request(prompt, **params)
        (job,) = await submit_many_and_wait(self.services, [body], timeout_s=timeout_s)
        if job.status.value != "succeeded":
            if raise_on_failure:
                cls = ERROR_CODES.get(job.error_code or "", PixelpipeError)
                raise cls(job.error_detail or f"generation {job.status}")
            return GenerationResult(job, None, None)
        svc = self.services
        return GenerationResult(job, await local_image_url(svc, job), await image_bytes(svc, job))

    async def get(self, job_id: str) -> Job:
        """The job as it is now (``NotFound`` for an unknown id)."""
        return await get_job(self.services, job_id)

    async def estimate(self, prompt: str, **params: Any) -> Estimate:
        """What a generation would cost (``estimate.price.amount_micros``); nothing is spent."""
        return estimate(self.services, new_request(prompt, **params))

    async def cancel(self, job_id: str) -> Job:
        """Cancel a running job (``Conflict`` when it already finished)."""
        return await cancel(self.services, job_id)
