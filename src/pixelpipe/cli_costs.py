"""``pixelpipe usage`` and ``pixelpipe budgets``: the ledger in the terminal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pixelpipe.bootstrap import Services, build_services
from pixelpipe.errors import PixelpipeError
from pixelpipe.ledger.budgets import delete_budget, list_budgets, set_budget
from pixelpipe.ledger.policy import decimal_usd, usd_to_micros
from pixelpipe.settings import load_settings

budgets_app = typer.Typer(help="Daily and monthly spend limits (global or per API key).")
out = Console()
err = Console(stderr=True)


async def _with_services(fn: Callable[[Services], Awaitable[None]]) -> None:
    svc = await build_services(load_settings())
    try:
        await fn(svc)
    finally:
        await svc.aclose()


def _run(coro_fn: Callable[[Services], Awaitable[None]]) -> None:
    try:
        asyncio.run(_with_services(coro_fn))
    except PixelpipeError as exc:
        err.print(f"[bold red]error[/] ({exc.code}): {exc.detail}")
        raise typer.Exit(1) from None


def usage(
    group_by: Annotated[str, typer.Option(help="model | provider | key | day")] = "model",
    days: Annotated[int | None, typer.Option(help="Only the last N days")] = None,
) -> None:
    """Spend, cache savings and unpriced events, grouped; plus what is stored and its cost."""

    async def show(svc: Services) -> None:
        since = time.time() - days * 86400 if days else None
        rows = await svc.ledger.usage(group_by, since=since)
        totals = await svc.ledger.totals()
        table = Table(title=f"usage by {group_by}")
        for col in ("group", "requests", "cache hits", "spent", "saved", "unpriced"):
            table.add_column(col, justify="left" if col == "group" else "right")
        for r in rows:
            table.add_row(
                r.group,
                str(r.requests),
                str(r.cache_hits),
                "$" + decimal_usd(r.spent_micros),
                "$" + decimal_usd(r.saved_micros),
                str(r.unpriced_events) if r.unpriced_events else "-",
            )
        out.print(table)
        n, size = await svc.store.image_stats()
        backend = svc.storage.scheme
        monthly = svc.prices.storage_month_micros(backend, size)
        out.print(
            f"today ${decimal_usd(totals.spent_today_micros)} · total "
            f"${decimal_usd(totals.spent_total_micros)} · saved by cache "
            f"${decimal_usd(totals.saved_total_micros)} · unpriced events {totals.unpriced_events}"
        )
        out.print(
            f"stored: {n} images, {size / 1e6:.1f} MB on {backend} → ${decimal_usd(monthly)}/month"
        )

    _run(show)


@budgets_app.command("set")
def budgets_set(
    limit_usd: Annotated[float, typer.Argument(help="Limit in USD, e.g. 5.00")],
    period: Annotated[str, typer.Option(help="day | month")] = "day",
    scope: Annotated[str, typer.Option(help="global or key:<id>")] = "global",
) -> None:
    """Set (or replace) a budget."""

    async def go(svc: Services) -> None:
        await set_budget(svc.db, scope, period, usd_to_micros(limit_usd))
        out.print(f"budget {scope}/{period} = ${limit_usd:.2f}")

    _run(go)


@budgets_app.command("list")
def budgets_list() -> None:
    """List budgets (from settings and from the database)."""

    async def go(svc: Services) -> None:
        table = Table(title="budgets")
        for col in ("scope", "period", "limit", "source"):
            table.add_column(col)
        for b in await list_budgets(svc.db, svc.settings):
            table.add_row(b.scope, b.period, "$" + decimal_usd(b.limit_micros), b.source)
        out.print(table)

    _run(go)


@budgets_app.command("delete")
def budgets_delete(
    period: Annotated[str, typer.Option(help="day | month")] = "day",
    scope: Annotated[str, typer.Option(help="global or key:<id>")] = "global",
) -> None:
    """Remove a budget set with `budgets set`."""

    async def go(svc: Services) -> None:
        found = await delete_budget(svc.db, scope, period)
        out.print("deleted" if found else "no such budget")

    _run(go)
