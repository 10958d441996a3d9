"""``pixelpipe keys``: create, list and revoke API keys (hashed at rest, shown once) and set their
default completion webhooks.

Imports inside functions are lazy on purpose (CLI start-up time, as in :mod:`pixelpipe.cli`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pixelpipe.cli_output import Command, Group, err, money, out, print_json, table, with_db

if TYPE_CHECKING:
    from pixelpipe.db import Database
    from pixelpipe.security.keys import ApiKey
    from pixelpipe.settings import Settings

# as pixelpipe.security.keys (not imported here: it loads SQLAlchemy; a test checks they agree)
SCOPES = ("generate", "read", "admin")
DEFAULT_RPM = 300
SCOPE_HELP = (
    "Which scope each route needs: "
    "read = GET /v1/generations, /v1/generations/{id} and its /events, /v1/models, /v1/costs, "
    "POST /v1/generations/{id}/event-token; "
    "generate = POST /v1/generations, /v1/estimates, /v1/images/generations, "
    "POST /v1/generations/{id}/cancel, DELETE /v1/generations/{id}; "
    "admin = GET /v1/usage, /metrics, key and budget management, and everything else "
    "(admin implies read and generate)."
)

keys_app = typer.Typer(
    cls=Group,
    help="API keys: `Authorization: Bearer pp_…` (scopes generate, read, admin).",
    no_args_is_help=True,
)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


@keys_app.command("create", cls=Command, epilog=SCOPE_HELP)
def keys_create(
    scopes: Annotated[
        str,
        typer.Option(
            metavar="SCOPES",
            help=f"Comma-separated subset of {', '.join(SCOPES)} (see below which routes each "
            "opens; `pixelpipe usage` over HTTP needs admin)",
        ),
    ] = "generate,read",
    name: Annotated[
        str, typer.Option(metavar="NAME", help="A label, e.g. who or what uses the key")
    ] = "",
    daily_usd: Annotated[
        float | None,
        typer.Option("--daily-usd", metavar="USD", help="Daily budget of this key (USD)"),
    ] = None,
    monthly_usd: Annotated[
        float | None,
        typer.Option("--monthly-usd", metavar="USD", help="Monthly budget of this key (USD)"),
    ] = None,
    rpm: Annotated[
        int, typer.Option(metavar="N", help="Requests per minute (0 = no limit)")
    ] = DEFAULT_RPM,
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
    """Create a key; it is printed once and only its hash is stored.

    The answer repeats what was set: scopes, rate limit, budgets and webhook.
    """

    async def go(settings: Settings, db: Database) -> tuple[ApiKey, str, list[dict[str, Any]]]:
        from pixelpipe.ledger.budgets import set_budget
        from pixelpipe.ledger.policy import key_scope, usd_to_micros
        from pixelpipe.security.keys import create_key

        key, secret = await create_key(
            db,
            name=name,
            scopes=scopes.split(","),
            rpm=rpm,
            webhook_url=webhook,
            settings=settings,  # the server's webhook rules (private hosts allowed?)
        )
        budgets = []
        for period, usd in (("day", daily_usd), ("month", monthly_usd)):
            if usd is not None:
                micros = usd_to_micros(usd)
                await set_budget(db, key_scope(key.id), period, micros)
                budgets.append({"period": period, "limit_micros": micros})
        return key, secret, budgets

    key, secret, budgets = with_db(go)
    info = _key_dict(key, budgets)
    if as_json:
        print_json({**info, "key": secret})
        return
    p = out().print
    p(f"created API key {key.id}", markup=False)
    p(f"  name:     {key.name or '-'}", markup=False)
    p(f"  scopes:   {', '.join(info['scopes'])}", markup=False)
    p(f"  rate:     {f'{key.rpm} requests/minute' if key.rpm else 'no limit'}", markup=False)
    p(f"  budgets:  {_budgets_text(budgets) or 'none (global budgets still apply)'}", markup=False)
    if key.webhook_url:
        p(f"  webhook:  {key.webhook_url}", markup=False)
    p("key (shown once, store it now):", markup=False)
    print(secret)
    p("use it as: Authorization: Bearer <key>", markup=False)


def _budgets_text(budgets: list[dict[str, Any]]) -> str:
    return ", ".join(f"{money(b['limit_micros'])}/{b['period']}" for b in budgets)


def _key_dict(k: ApiKey, budgets: list[dict[str, Any]]) -> dict[str, Any]:
    from pixelpipe.ledger.policy import decimal_usd

    return {
        "id": k.id,
        "name": k.name,
        "scopes": [s for s in SCOPES if s in k.scopes],
        "rpm": k.rpm,
        "budgets": [{**b, "limit_usd": decimal_usd(b["limit_micros"])} for b in budgets],
        "webhook": k.webhook_url,
        "created_at": _iso(k.created_at),
        "revoked_at": _iso(k.revoked_at),
    }


@keys_app.command("list", cls=Command)
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the keys as JSON")] = False,
) -> None:
    """Every key: id, name, scopes, rate limit, budgets, created, revoked, webhook (no secret)."""

    async def go(settings: Settings, db: Database) -> list[dict[str, Any]]:
        from pixelpipe.ledger.budgets import list_budgets
        from pixelpipe.ledger.policy import key_scope
        from pixelpipe.security.keys import list_keys

        keys = await list_keys(db)
        budgets = await list_budgets(db)
        return [
            _key_dict(
                k,
                [
                    {"period": b.period, "limit_micros": b.limit_micros}
                    for b in budgets
                    if b.scope == key_scope(k.id)
                ],
            )
            for k in keys
        ]

    keys = with_db(go)
    if as_json:
        print_json(keys)
        return
    cols = ["id", "name", "scopes", "rpm", "budgets", "created", "revoked"]
    t = table("API keys", cols, ids=("id",))
    for k in keys:
        t.add_row(
            k["id"],
            k["name"] or "-",
            ",".join(k["scopes"]),
            str(k["rpm"]) if k["rpm"] else "∞",
            _budgets_text(k["budgets"]) or "-",
            _when(_ts(k["created_at"])),
            _when(_ts(k["revoked_at"])),
        )
    out().print(t)
    # below the table, whole and unwrapped (copyable; a long URL would squeeze the table)
    hooked = [k for k in keys if k["webhook"]]
    if hooked:
        out().print("completion webhooks (a request's own `webhook` wins):", markup=False)
        for k in hooked:
            out().print(f"  {k['id']}  {k['webhook']}", markup=False)


def _ts(iso: str | None) -> float | None:
    return None if iso is None else dt.datetime.fromisoformat(iso).timestamp()


KeyId = Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (see `keys list`)")]


@keys_app.command("revoke", cls=Command)
def keys_revoke(key_id: KeyId) -> None:
    """Revoke a key: every request with it gets 401 from now on (the row stays for the ledger)."""

    async def go(settings: Settings, db: Database) -> float | None:
        from pixelpipe.security.keys import revoke_key

        return (await revoke_key(db, key_id)).revoked_at

    revoked_at = with_db(go)
    out().print(f"revoked {key_id} at {_when(revoked_at)}", markup=False)


@keys_app.command("set-webhook", cls=Command)
def keys_set_webhook(
    key_id: KeyId,
    url: Annotated[
        str | None,
        typer.Argument(metavar="URL", help="http(s) URL that receives the key's completed jobs"),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the key's webhook")] = False,
) -> None:
    """Set or clear a key's completion webhook: jobs it starts from now on are reported there,
    unless a request names its own `webhook` (which wins)."""
    if (url is None) == (not clear):
        err().print(
            "[bold red]error[/]: give either a URL or --clear, e.g. "
            "`pixelpipe keys set-webhook KEY_ID https://example.com/hooks/pixelpipe`"
        )
        raise typer.Exit(2)

    async def go(settings: Settings, db: Database) -> str | None:
        from pixelpipe.security.keys import set_key_webhook

        hook = None if clear else url
        return (await set_key_webhook(db, key_id, hook, settings)).webhook_url

    hook = with_db(go)
    if hook is None:
        out().print(
            f"{key_id}: webhook cleared (its jobs send none unless a request names one)",
            markup=False,
        )
    else:
        out().print(f"{key_id}: completed jobs are posted to {hook}", markup=False)
