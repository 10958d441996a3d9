"""``pixelpipe keys``: create, list and revoke API keys (hashed at rest, shown once)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from pixelpipe.db import Database, open_database
from pixelpipe.errors import PixelpipeError
from pixelpipe.ledger.budgets import list_budgets, set_budget
from pixelpipe.ledger.policy import decimal_usd, key_scope, usd_to_micros
from pixelpipe.security.keys import DEFAULT_RPM, SCOPES, create_key, list_keys, revoke_key
from pixelpipe.settings import load_settings

keys_app = typer.Typer(
    help="API keys: `Authorization: Bearer pp_…` (scopes generate, read, admin).",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")


async def _with_db(fn: Callable[[Database], Awaitable[T]]) -> T:
    from pixelpipe.migrations.runner import upgrade_async

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.effective_database_url)
    db = open_database(settings.effective_database_url)
    try:
        return await fn(db)
    finally:
        await db.dispose()


def _run(fn: Callable[[Database], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_with_db(fn))
    except PixelpipeError as exc:
        err.print(f"[bold red]error[/] ({exc.code}): {exc.detail}")
        raise typer.Exit(1) from None


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@keys_app.command("create")
def keys_create(
    scopes: Annotated[
        str, typer.Option(help=f"Comma-separated subset of {', '.join(SCOPES)}")
    ] = "generate,read",
    name: Annotated[str, typer.Option(help="A label, e.g. who or what uses the key")] = "",
    daily_usd: Annotated[
        float | None, typer.Option("--daily-usd", help="Daily budget of this key (USD)")
    ] = None,
    monthly_usd: Annotated[
        float | None, typer.Option("--monthly-usd", help="Monthly budget of this key (USD)")
    ] = None,
    rpm: Annotated[int, typer.Option(help="Requests per minute (0 = no limit)")] = DEFAULT_RPM,
    as_json: Annotated[bool, typer.Option("--json", help="Print the key as JSON")] = False,
) -> None:
    """Create a key; it is printed once and only its hash is stored."""

    async def go(db: Database) -> tuple[str, str, list[str]]:
        key, secret = await create_key(db, name=name, scopes=scopes.split(","), rpm=rpm)
        for period, usd in (("day", daily_usd), ("month", monthly_usd)):
            if usd is not None:
                await set_budget(db, key_scope(key.id), period, usd_to_micros(usd))
        return key.id, secret, sorted(key.scopes)

    key_id, secret, granted = _run(go)
    if as_json:
        body = {"id": key_id, "key": secret, "scopes": granted, "rpm": rpm}
        print(json.dumps(body))
        return
    out.print(f"created API key [bold]{key_id}[/] (scopes: {', '.join(granted)}; {rpm or '∞'} rpm)")
    out.print("key (shown once, store it now):")
    print(secret)
    out.print("use it as: Authorization: Bearer <key>")


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, name, scopes, rate limit, budgets, created, revoked (never the secret)."""

    async def go(db: Database) -> None:
        keys = await list_keys(db)
        budgets = await list_budgets(db)
        table = Table(title="API keys")
        for col in ("id", "name", "scopes", "rpm", "budgets", "created", "revoked"):
            table.add_column(col)
        for k in keys:
            mine = [b for b in budgets if b.scope == key_scope(k.id)]
            spend = ", ".join(f"${decimal_usd(b.limit_micros)}/{b.period}" for b in mine) or "-"
            table.add_row(
                k.id,
                k.name or "-",
                ",".join(s for s in SCOPES if s in k.scopes),
                str(k.rpm) if k.rpm else "∞",
                spend,
                _when(k.created_at),
                _when(k.revoked_at),
            )
        out.print(table)

    _run(go)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`)")],
) -> None:
    """Revoke a key: every request with it gets 401 from now on (the row stays for the ledger)."""

    async def go(db: Database) -> float | None:
        return (await revoke_key(db, key_id)).revoked_at

    revoked_at = _run(go)
    out.print(f"revoked {key_id} at {_when(revoked_at)}")
