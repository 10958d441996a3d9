"""The one place that picks concrete backends from settings and wires the services together."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from pixelpipe.boards.sql import SqlBoards
from pixelpipe.catalog import Catalog
from pixelpipe.catalog.operator_file import OperatorFile
from pixelpipe.db import Database, open_database
from pixelpipe.delivery.delivery import Delivery
from pixelpipe.errors import ConfigError
from pixelpipe.events.base import Notifier
from pixelpipe.events.local import LocalNotifier
from pixelpipe.fetch import FetchPolicy, new_fetch_client
from pixelpipe.jobs.sql import SqlJobStore
from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.ledger.sql.gpu_runs import recent_gpu_runs
from pixelpipe.migrations.runner import upgrade_async
from pixelpipe.moderation.settings import ModerationSettings
from pixelpipe.moderation.sql import SqlModerationLog
from pixelpipe.moderation.stage import Moderation, open_moderator
from pixelpipe.notify.hooks import CompletionHooks
from pixelpipe.pricing import PriceTable, load_price_table
from pixelpipe.pricing.gpu_time import HISTORY, gpu_pricing
from pixelpipe.providers.base import Provider
from pixelpipe.providers.gate import ProviderGate
from pixelpipe.providers.hosts import backend_hosts, output_hosts
from pixelpipe.providers.registry import (
    backend_kinds,
    build_providers,
    full_catalog,
    operator_file,
    provider_names,
    registrations,
)
from pixelpipe.queue.base import Queue
from pixelpipe.queue.local import LocalQueue
from pixelpipe.safety import load_rules
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.storage.factory import open_storage, storage_scheme


def _providers(
    settings: Settings, http: httpx.AsyncClient, operator: OperatorFile | None
) -> dict[str, Provider]:
    """Every registered provider whose credentials are set (the offline preview always), and
    one per backend of the operator's catalog file."""
    return build_providers(settings, operator=operator)


def fetch_policies(
    settings: Settings, providers: Iterable[str], operator: OperatorFile | None = None
) -> dict[str, FetchPolicy]:
    """Each provider's fetch policy. A provider with none would have every URL output refused
    *after* its run was paid for, so that stops the start instead, naming the fix. A backend of
    the operator's catalog file may be fetched from its own host only (private addresses and
    plain http allowed there: the operator named it)."""
    own = backend_hosts(operator)
    hosts = {**output_hosts(settings, registrations()), **own}
    missing = sorted(set(providers) - set(hosts))
    if missing:
        raise ConfigError(
            f"provider {', '.join(missing)} has no output hosts: it needs a registration, "
            "pixelpipe/providers/<name>/__init__.py with REGISTRATION = ProviderRegistration(..., "
            "output_hosts=OutputHosts((...))) naming where its images may be downloaded from (an "
            "empty tuple allows any public host); see docs/adding-a-provider.md"
        )
    return {
        name: FetchPolicy(
            allowed_hosts=allowed,
            allow_http_and_loopback=settings.test_mode,
            own_network=name in own,
        )
        for name, allowed in hosts.items()
    }


def _prices(operator: OperatorFile | None, catalog: Catalog) -> PriceTable:
    """The price table; with a catalog file, its backends priced in GPU time."""
    prices = load_price_table()
    rates = {b.name: b.usd_per_gpu_hour for b in operator.backends} if operator else {}
    gpu = gpu_pricing(rates, catalog)
    return prices if gpu is None else prices.with_gpu(gpu)


async def _seed_gpu_history(db: Database, prices: PriceTable) -> None:
    """GPU-time estimates start from the backends' past runs in the ledger, not from zero."""
    if prices.gpu is not None:
        limit = HISTORY * 10 * len(prices.gpu.rates)
        prices.gpu.history.seed(await recent_gpu_runs(db, prices.gpu.rates, limit))


def _queue(settings: Settings) -> Queue:
    """Empty URL: the embedded dispatcher. PostgreSQL URL: SAQ (scale-out)."""
    if not settings.queue_url:
        return LocalQueue()
    try:
        from pixelpipe.queue.saq import SaqQueue
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            f"PIXELPIPE_QUEUE_URL needs the postgres extra ({exc.name} is missing): "
            "`uv sync --extra postgres` or `pip install 'pixelpipe[postgres]'`"
        ) from None
    return SaqQueue(settings.queue_url)


def _notifier(settings: Settings) -> Notifier:
    """Empty URL: in-process fan-out. redis:// URL: Redis pub/sub across processes."""
    if not settings.redis_url:
        return LocalNotifier()
    if not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            "PIXELPIPE_REDIS_URL must look like redis://host:6379/0 (or rediss:// for TLS)"
        )
    try:
        from pixelpipe.events.redis import RedisNotifier
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "PIXELPIPE_REDIS_URL needs the redis extra: `uv sync --extra redis` or "
            "`pip install 'pixelpipe[redis]'`"
        ) from None
    return RedisNotifier(settings.redis_url)


def _gate(settings: Settings, notifier: Notifier) -> ProviderGate:
    """Pauses stay in memory when embedded; with Redis every process shares them."""
    if not settings.redis_url:
        return ProviderGate()
    from pixelpipe.events.redis import RedisNotifier  # the redis extra, checked by _notifier
    from pixelpipe.providers.gate_redis import RedisGateBackend

    assert isinstance(notifier, RedisNotifier)
    return ProviderGate(RedisGateBackend(notifier))


def _provider_order(settings: Settings, operator: OperatorFile | None = None) -> tuple[str, ...]:
    """PIXELPIPE_PROVIDER_ORDER (e.g. ``fal,replicate``): failover order of shared models; it
    may name the backends of the operator's catalog file too."""
    names = tuple(n.strip().lower() for n in settings.provider_order.split(",") if n.strip())
    backends = operator.backend_names() if operator else ()
    known = sorted({*provider_names(), *backends} - set(backend_kinds()))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"PIXELPIPE_PROVIDER_ORDER names unknown providers ({', '.join(unknown)}); "
            f"use a comma-separated list of: {', '.join(known)}"
        )
    return names


def backend_slots(operator: OperatorFile | None, providers: dict[str, Provider]) -> dict[str, int]:
    """The runs each backend of the catalog file takes at once (those that were built)."""
    if operator is None:
        return {}
    return {b.name: b.slots for b in operator.backends if b.name in providers}


async def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    operator = operator_file(settings)  # the catalog file, checked before anything is opened
    order = _provider_order(settings, operator)  # likewise: a typo fails cleanly
    queue = _queue(settings)  # likewise a wrong queue URL (nothing is connected yet)
    storage_scheme(settings.effective_storage_url)  # and a storage URL no backend serves
    moderation = settings.section(ModerationSettings)  # and a bad moderation setting
    moderator = open_moderator(moderation)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        await upgrade_async(settings.effective_database_url)
    db = open_database(settings.effective_database_url)
    notifier = _notifier(settings)
    storage = open_storage(settings)
    http = new_fetch_client()  # trust_env=False: the SSRF guard must see the real peer
    providers = _providers(settings, http, operator)
    policies = fetch_policies(settings, providers, operator)  # before a run can be paid for
    catalog = full_catalog(operator).restricted_to(set(providers))
    prices = _prices(operator, catalog)
    await _seed_gpu_history(db, prices)
    gate = _gate(settings, notifier)
    gate.order = order
    await gate.start(sorted(providers))
    await queue.connect()  # fail at start-up, not on the first request
    delivery = Delivery(storage, settings)
    return Services(
        settings=settings,
        catalog=catalog,
        rules=load_rules(settings.safety_rules_path),
        prices=prices,
        db=db,
        notifier=notifier,
        store=SqlJobStore(db, notifier),
        storage=storage,
        delivery=delivery,
        ledger=SqlLedger(db, settings, prices),
        providers=providers,
        gate=gate,
        http=http,
        fetch_policies=policies,
        queue=queue,
        completion_hooks=CompletionHooks(settings, db, notifier, delivery),  # webhooks, waiters
        slots=backend_slots(operator, providers),
        boards=SqlBoards(db),
        moderation=Moderation(moderation, moderator, SqlModerationLog(db)),
    )
