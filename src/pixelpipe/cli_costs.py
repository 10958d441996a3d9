"""``pixelpipe usage`` and ``pixelpipe budgets``: the ledger in the terminal.

Both open the database only (no providers, no HTTP clients), so they answer quickly.
Imports inside functions are lazy on purpose (CLI start-up time, as in :mod:`pixelpipe.cli`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pixelpipe.cli_output import Command, Group, money, out, print_json, table, with_db

if TYPE_CHECKING:
    from pixelpipe.db import Database
    from pixelpipe.ledger.base import UsageRow
    from pixelpipe.settings import Settings
    from pixelpipe.usecases.usage import Books

budgets_app = typer.Typer(
    cls=Group, help="Daily and monthly spend limits (global or per API key).", no_args_is_help=True
)


def usage(
    group_by: Annotated[
        str, typer.Option(metavar="GROUP", help="model | provider | key | day")
    ] = "model",
    days: Annotated[int | None, typer.Option(metavar="N", help="Only the last N days")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (the shape of GET /v1/usage)")
    ] = False,
) -> None:
    """Spend, cache savings and unpriced events, grouped; what is stored and its cost; and
    what an image costs on each provider (your GPU's time beside the hosted prices)."""

    async def go(settings: Settings, db: Database) -> dict[str, Any]:
        return await usage_report(settings, db, group_by, days)

    report = with_db(go)
    if as_json:
        print_json(report)
        return
    _print_usage(report)


async def usage_report(
    settings: Settings, db: Database, group_by: str, days: int | None
) -> dict[str, Any]:
    """The report as ``GET /v1/usage`` answers it (plus today's spend)."""
    # imported here: `pixelpipe --help` and the other commands start without SQLAlchemy
    from pixelpipe.usecases.usage import (
        cost_totals,
        image_cost_fields,
        moderation_fields,
        usage_report,
    )

    books = _books(settings, db)
    since = time.time() - days * 86400 if days else None
    report = await usage_report(books, group_by, since=since)
    totals = await cost_totals(books)
    storage = report.storage
    assert storage is not None  # the storage URL always names its backend
    monthly = storage.monthly_micros
    return {
        "group_by": group_by,
        "since": None if since is None else _iso(since),
        "until": None,
        "rows": [_row(r) for r in report.rows],
        "total": _row(report.total),
        "storage": {
            "backend": storage.backend,
            "images": storage.images,
            "bytes": storage.bytes,
            "monthly_usd": None if monthly is None else _usd(monthly),
            "monthly_micros": monthly,
        },
        "today": {
            "spent_usd": _usd(totals.spent_today_micros),
            "spent_micros": totals.spent_today_micros,
        },
        "per_image": {
            "providers": [image_cost_fields(r) for r in report.per_image.providers],
            "models": [image_cost_fields(r) for r in report.per_image.models],
        },
        "moderation": [moderation_fields(r) for r in report.moderation],
    }


def _books(settings: Settings, db: Database) -> Books:
    """What the report reads, on the database alone: no providers, storage or HTTP clients (and
    not :mod:`pixelpipe.bootstrap`, which loads them all), so that the command answers quickly."""
    from pixelpipe.events.local import LocalNotifier
    from pixelpipe.jobs.sql import SqlJobStore
    from pixelpipe.ledger.sql import SqlLedger
    from pixelpipe.moderation.sql import SqlModerationLog
    from pixelpipe.pricing import load_price_table
    from pixelpipe.storage.factory import storage_scheme
    from pixelpipe.usecases.usage import Books

    prices = load_price_table()
    backend = storage_scheme(settings.effective_storage_url)  # an unknown scheme is a ConfigError
    ledger, images = SqlLedger(db, settings, prices), SqlJobStore(db, LocalNotifier())
    return Books(ledger, images, prices, backend, SqlModerationLog(db))


def _usd(micros: int) -> str:
    from pixelpipe.ledger.policy import decimal_usd

    return decimal_usd(micros)


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _row(r: UsageRow) -> dict[str, Any]:
    return {
        "group": r.group,
        "requests": r.requests,
        "cache_hits": r.cache_hits,
        "spent_usd": _usd(r.spent_micros),
        "spent_micros": r.spent_micros,
        "saved_usd": _usd(r.saved_micros),
        "saved_micros": r.saved_micros,
        "unpriced_events": r.unpriced_events,
    }


def _print_usage(report: dict[str, Any]) -> None:
    cols = ["group", "requests", "cache hits", "spent", "saved", "unpriced"]
    t = table(f"usage by {report['group_by']}", cols, ids=("group",))
    for c in t.columns[1:]:
        c.justify = "right"
    for r in report["rows"]:
        t.add_row(
            r["group"],
            str(r["requests"]),
            str(r["cache_hits"]),
            money(r["spent_micros"]),
            money(r["saved_micros"]),
            str(r["unpriced_events"]) if r["unpriced_events"] else "-",
        )
    out().print(t)
    total, s = report["total"], report["storage"]
    out().print(
        f"today {money(report['today']['spent_micros'])} · total {money(total['spent_micros'])}"
        f" · saved by cache {money(total['saved_micros'])}"
        f" · unpriced events {total['unpriced_events']}",
        markup=False,
    )
    out().print(
        f"stored: {s['images']} images, {s['bytes'] / 1e6:.1f} MB on {s['backend']} → "
        f"{money(s['monthly_micros'])}/month",
        markup=False,
    )
    _print_per_image(report["per_image"]["models"])
    _print_moderation(report["moderation"])


def _print_moderation(rows: list[dict[str, Any]]) -> None:
    """Prompts refused and images blocked, blurred or flagged, per day and key."""
    if not rows:
        return
    t = table("moderation", ["day", "key", "what", "count", "spent"], ids=("key",))
    for r in rows:
        t.add_row(
            r["day"],
            r["key"],
            f"{r['kind']} {r['action']}",
            str(r["count"]),
            money(r["spent_micros"]) if r["kind"] == "image" else "-",
        )
    out().print(t)


def _print_per_image(rows: list[dict[str, Any]]) -> None:
    """$/image per model on each provider: self-hosted GPU time beside hosted prices."""
    if not rows:
        return
    cols = ["model", "provider", "images", "$/image", "GPU s/image", "measure", "unpriced"]
    t = table("cost per image", cols, ids=("model",))
    for c in t.columns[2:-2]:
        c.justify = "right"
    for r in rows:
        gpu = r["gpu"]
        per_image = gpu["seconds_per_image"] if gpu else None
        t.add_row(
            r["model"],
            r["provider"],
            str(r["images"]),
            money(r["micros_per_image"]),
            "-" if per_image is None else f"{per_image:.2f}",
            gpu["source"] if gpu else "price",
            str(r["unpriced_images"]) if r["unpriced_images"] else "-",
        )
    out().print(t)


Period = Annotated[str, typer.Option(metavar="PERIOD", help="day | month")]
Scope = Annotated[str, typer.Option(metavar="SCOPE", help="global or key:<id>")]


@budgets_app.command("set", cls=Command)
def budgets_set(
    limit_usd: Annotated[float, typer.Argument(metavar="USD", help="Limit in USD, e.g. 5.00")],
    period: Period = "day",
    scope: Scope = "global",
) -> None:
    """Set (or replace) a budget."""
    from pixelpipe.ledger.policy import usd_to_micros

    async def go(settings: Settings, db: Database) -> int:
        from pixelpipe.ledger.budgets import set_budget

        micros = usd_to_micros(limit_usd)
        await set_budget(db, scope, period, micros)
        return micros

    out().print(f"budget {scope}/{period} = {money(with_db(go))}", markup=False)


@budgets_app.command("list", cls=Command)
def budgets_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the budgets as JSON")] = False,
) -> None:
    """List budgets (from settings and from the database)."""

    async def go(settings: Settings, db: Database) -> list[dict[str, Any]]:
        from pixelpipe.ledger.budgets import list_budgets

        return [
            {"scope": b.scope, "period": b.period, "limit_micros": b.limit_micros,
             "limit_usd": _usd(b.limit_micros), "source": b.source}
            for b in await list_budgets(db, settings)
        ]  # fmt: skip

    budgets = with_db(go)
    if as_json:
        print_json(budgets)
        return
    t = table("budgets", ["scope", "period", "limit", "source"], ids=("scope",))
    for b in budgets:
        t.add_row(b["scope"], b["period"], money(b["limit_micros"]), b["source"])
    out().print(t)


@budgets_app.command("delete", cls=Command)
def budgets_delete(period: Period = "day", scope: Scope = "global") -> None:
    """Remove a budget set with `budgets set`."""

    async def go(settings: Settings, db: Database) -> bool:
        from pixelpipe.ledger.budgets import delete_budget

        return await delete_budget(db, scope, period)

    out().print("deleted" if with_db(go) else "no such budget")
