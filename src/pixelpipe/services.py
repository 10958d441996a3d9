"""The services a pipeline stage needs, built once per process by :mod:`pixelpipe.bootstrap`."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from pixelpipe.boards import Boards, MemoryBoards
from pixelpipe.catalog import Catalog
from pixelpipe.db import Database
from pixelpipe.delivery.delivery import Delivery
from pixelpipe.events.base import Notifier
from pixelpipe.events.eta import ServiceTimes
from pixelpipe.events.partials import PartialHub
from pixelpipe.fetch import FetchPolicy
from pixelpipe.jobs.model import Job
from pixelpipe.jobs.store import JobStore
from pixelpipe.jobs.watched import WatchedJobs
from pixelpipe.ledger.base import Ledger
from pixelpipe.metrics import Metrics
from pixelpipe.moderation.stage import Moderation
from pixelpipe.pricing import PriceTable
from pixelpipe.providers.base import Provider
from pixelpipe.providers.gate import ProviderGate
from pixelpipe.queue.base import Queue
from pixelpipe.safety import SafetyRules
from pixelpipe.settings import Settings
from pixelpipe.storage.base import Storage


class JobCompletions(Protocol):
    """What happens once a job is terminal: waiters wake, a completion webhook is queued
    (:class:`pixelpipe.notify.hooks.CompletionHooks`). Never raises into the pipeline."""

    worker_here: bool  # a dispatcher runs in this process: every end is announced here
    wakeup: asyncio.Event  # set when a webhook was queued: the deliverer sends now

    async def job_finished(self, job: Job) -> None: ...

    async def queue_webhook(self, job: Job) -> bool: ...

    def watch(self, job_id: str) -> asyncio.Future[Job]: ...

    def unwatch(self, job_id: str, fut: asyncio.Future[Job]) -> None: ...

    def finished(self, job_id: str) -> Job | None:
        """The terminal job if its end was announced here recently (None: read the row)."""
        ...

    def hand_image(self, job_id: str, data: bytes) -> None:
        """The image just stored for a job a waiter here watches, for that waiter's answer."""
        ...

    def take_image(self, job_id: str) -> bytes | None:
        """The image handed over for ``job_id`` (once), or None: read it from storage."""
        ...


@dataclass
class Services:
    """Everything a pipeline stage needs, built once per process and passed down."""

    settings: Settings
    catalog: Catalog
    rules: SafetyRules
    prices: PriceTable
    db: Database
    notifier: Notifier
    store: JobStore
    storage: Storage
    delivery: Delivery
    ledger: Ledger
    providers: dict[str, Provider]
    gate: ProviderGate
    http: httpx.AsyncClient
    fetch_policies: dict[str, FetchPolicy]
    queue: Queue
    completion_hooks: JobCompletions
    # the operator's backends and the runs each takes at once: never more in flight on one, across
    # all processes (worker/slots.py); hosted providers are not listed
    slots: dict[str, int] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    boards: Boards = field(default_factory=MemoryBoards)  # favourites and boards (gallery)
    moderation: Moderation = field(default_factory=Moderation)  # none unless configured
    service_times: ServiceTimes = field(default_factory=ServiceTimes)  # ETA medians (events/eta)
    watched: WatchedJobs = field(default_factory=WatchedJobs)  # live places (usecases/queue_watch)
    partials: PartialHub = field(default_factory=PartialHub)  # raw partials, in-process (events/)
    instance: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.queue.aclose()
        await self.moderation.aclose()
        await self.http.aclose()
        await self.storage.aclose()
        await self.gate.aclose()
        await self.notifier.aclose()
        await self.db.dispose()
