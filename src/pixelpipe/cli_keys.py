"""``pixelpipe keys``: create, list and revoke API keys (hashed at rest, shown once) and set their
default completion webhooks."""

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
from pixelpipe.security.keys import (
    DEFAULT_RPM,
    SCOPES,
    create_key,
    list_keys,
    revoke_key,
    set_key_webhook,
)
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
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            metavar="URL",
            help="Completion webhook for every job of this key that names none itself",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the key as JSON")] = False,
) -> None:
    """Create a key; it is printed once and only its hash is stored."""

    async def go(db: Database) -> tuple[str, str, list[str], str | None]:
        key, secret = await create_key(
            db,
            name=name,
            scopes=scopes.split(","),
            rpm=rpm,
            webhook_url=webhook,
            settings=load_settings(),  # the server's webhook rules (private hosts allowed?)
        )
        for period, usd in (("day", daily_usd), ("month", monthly_usd)):
            if usd is not None:
                await set_budget(db, key_scope(key.id), period, usd_to_micros(usd))
        return key.id, secret, sorted(key.scopes), key.webhook_url

    key_id, secret, granted, hook = _run(go)
    if as_json:
        body = {"id": key_id, "key": secret, "scopes": granted, "rpm": rpm, "webhook": hook}
        print(json.dumps(body))
        return
    out.print(f"created API key [bold]{key_id}[/] (scopes: {', '.join(granted)}; {rpm or '∞'} rpm)")
    if hook:
        out.print(f"completion webhook: {hook}", markup=False, soft_wrap=True)
    out.print("key (shown once, store it now):")
    print(secret)
    out.print("use it as: Authorization: Bearer <key>")


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, name, scopes, rate limit, budgets, created, revoked, webhook (no secret)."""

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
        # below the table, whole and unwrapped (copyable; a long URL would squeeze the table)
        hooked = [k for k in keys if k.webhook_url]
        if hooked:
            out.print("completion webhooks (a request's own `webhook` wins):", markup=False)
            for k in hooked:
                out.print(f"  {k.id}  {k.webhook_url}", markup=False, soft_wrap=True)

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


@keys_app.command("set-webhook")
def keys_set_webhook(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`)")],
    url: Annotated[
        str | None, typer.Argument(help="http(s) URL that receives the key's completed jobs")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the key's webhook")] = False,
) -> None:
    """Set or clear a key's completion webhook: jobs it starts from now on are reported there,
    unless a request names its own `webhook` (which wins)."""
    if (url is None) == (not clear):
        err.print(
            "[bold red]error[/]: give either a URL or --clear, e.g. "
            "`pixelpipe keys set-webhook KEY_ID https://example.com/hooks/pixelpipe`"
        )
        raise typer.Exit(2)

    async def go(db: Database) -> str | None:
        hook = None if clear else url
        return (await set_key_webhook(db, key_id, hook, load_settings())).webhook_url

    hook = _run(go)
    if hook is None:
        out.print(f"{key_id}: webhook cleared (its jobs send none unless a request names one)")
    else:
        out.print(f"{key_id}: completed jobs are posted to {hook}", markup=False, soft_wrap=True)
