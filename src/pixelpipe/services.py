"""The services a pipeline stage needs, built once per process by :mod:`pixelpipe.bootstrap`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from pixelpipe.catalog import Catalog
from pixelpipe.db import Database
from pixelpipe.delivery.delivery import Delivery
from pixelpipe.events.base import Notifier
from pixelpipe.fetch import FetchPolicy
from pixelpipe.jobs.store import JobStore
from pixelpipe.ledger.base import Ledger
from pixelpipe.metrics import Metrics
from pixelpipe.pricing import PriceTable
from pixelpipe.providers.base import Provider
from pixelpipe.providers.gate import ProviderGate
from pixelpipe.queue.base import Queue
from pixelpipe.safety import SafetyRules
from pixelpipe.settings import Settings
from pixelpipe.storage.base import Storage

if TYPE_CHECKING:
    from pixelpipe.notify.hooks import CompletionHooks


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
    metrics: Metrics = field(default_factory=Metrics)
    instance: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")
    completion_hooks: CompletionHooks | None = None  # set by build_services (pixelpipe.notify)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.queue.aclose()
        await self.http.aclose()
        await self.storage.aclose()
        await self.gate.aclose()
        await self.notifier.aclose()
        await self.db.dispose()
