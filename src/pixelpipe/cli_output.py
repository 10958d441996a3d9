"""What every ``pixelpipe`` command shares: its consoles, its money format, its error exit and the
help layout (readable metavars, plain flags).

Kept light on purpose: importing this module (and ``pixelpipe.cli``) loads Typer and the standard
library only, so that ``pixelpipe --help`` answers at once; Rich is imported by the first console.

**Output rule.** Nothing is hard-wrapped: text goes out as one line however long (a terminal wraps
it visually, a pipe gets it whole), and when stdout is not a terminal, tables are laid out as wide
as their content, so ids and URLs are never cut or folded. On a terminal, tables fit its width, but
id columns keep their full width (other columns wrap instead).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Awaitable, Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from pixelpipe.db import Database
    from pixelpipe.errors import PixelpipeError
    from pixelpipe.settings import Settings

T = TypeVar("T")
UNBOUNDED = 1_000_000  # the console width off a terminal: a table is as wide as its content
MONEY_PLACES = Decimal("0.0001")  # 1/100 of a cent: enough for per-image prices ($0.0030)


@functools.cache
def out() -> Console:
    """stdout."""
    return _console(stderr=False)


@functools.cache
def err() -> Console:
    """stderr: errors, progress, hints."""
    return _console(stderr=True)


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, soft_wrap=True)
    return Console(stderr=stderr, soft_wrap=True, width=UNBOUNDED)


def table(title: str | None, columns: list[str], *, ids: tuple[str, ...] = ()) -> Table:
    """A table whose ``ids`` columns are never wrapped, folded or cut (and ``right`` aligned
    columns for numbers are the caller's to add). Columns are added in order."""
    from rich.table import Table

    t = Table(title=title)
    for name in columns:
        if name in ids:
            t.add_column(name, no_wrap=True, overflow="ignore", min_width=len(name))
        else:
            t.add_column(name)
    return t


def money(micros: int | None) -> str:
    """Every cost the CLI prints, one rule: dollars with 4 decimals (``$0.0030``, ``$10.0000``),
    rounded half up; ``unpriced`` when the price is unknown (never shown as $0). The ``--json``
    outputs carry the exact micro-dollars."""
    if micros is None:
        return "unpriced"
    dollars = (Decimal(micros) / 1_000_000).quantize(MONEY_PLACES, rounding=ROUND_HALF_UP)
    return f"${dollars}"


def die(exc: PixelpipeError, code: int = 1) -> NoReturn:
    """Print ``error (code): detail`` (and the reason, when there is one) and exit."""
    from rich.markup import escape  # lazy, as every import here: CLI start-up time

    detail = escape(exc.detail)  # text, not markup: a detail may contain "[/prefix]"
    err().print(f"[bold red]error[/] ({exc.code}): {detail}", markup=True, highlight=False)
    reason = exc.extra.get("reason")
    if reason:
        err().print(f"reason: {reason}", markup=False)
    raise typer.Exit(code)


def load_settings_or_die(**overrides: Any) -> Settings:
    """Settings from the environment (``None`` overrides are left out); exits 1 naming a bad one."""
    from pixelpipe.errors import PixelpipeError  # lazy, as every import here: CLI start-up time
    from pixelpipe.settings import load_settings

    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except PixelpipeError as exc:
        die(exc)


def unreachable(server: str, exc: Exception) -> NoReturn:
    """The --server URL answered nothing: say so, and what to check."""
    err().print(
        f"error: cannot reach the pixelpipe server at {server} ({type(exc).__name__}: {exc}); "
        "is `pixelpipe serve` running there, on that address and port?",
        markup=False,
    )
    raise typer.Exit(1)


Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        metavar="URL",
        help="Run against this running pixelpipe server, e.g. http://127.0.0.1:8000 "
        "(default: in this process, on the local data directory)",
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        envvar="PIXELPIPE_API_KEY",
        help="API key for a --server that requires keys (pp_…; needs scope generate)",
    ),
]


def with_db(fn: Callable[[Settings, Database], Awaitable[T]]) -> T:
    """Run ``fn(settings, db)`` on the configured database (created or upgraded first), for the
    commands that need the database and nothing else; a PixelpipeError exits 1 with its message."""
    import asyncio

    from pixelpipe.errors import PixelpipeError

    async def go() -> T:
        from pixelpipe.db import open_database
        from pixelpipe.settings import load_settings

        settings = load_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.effective_database_url
        if not sqlite_at_head(url):
            from pixelpipe.migrations.runner import upgrade_async

            await upgrade_async(url)
        db = open_database(url)
        try:
            return await fn(settings, db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except PixelpipeError as exc:
        die(exc)


def sqlite_at_head(database_url: str) -> bool:
    """True when ``database_url`` is a SQLite file already at the newest migration: the CLI then
    skips Alembic (a third of a second of imports). Anything else (PostgreSQL, a new or older
    database, an unreadable one) answers False and the caller upgrades as usual."""
    import re
    import sqlite3
    from pathlib import Path

    if not database_url.startswith("sqlite"):
        return False
    path = Path(database_url.split("///", 1)[-1])
    versions = Path(__file__).parent / "migrations" / "versions"
    revisions, parents = set(), set()
    for f in versions.glob("*.py"):
        text = f.read_text(encoding="utf-8")
        rev = re.search(r'^revision\b.*?=\s*"([^"]+)"', text, re.M)
        down = re.search(r'^down_revision\b.*?=\s*"([^"]+)"', text, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    heads = revisions - parents
    if len(heads) != 1 or not path.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return False
    return {r[0] for r in rows} == heads


def print_json(value: Any) -> None:
    """One JSON document on stdout, whole (never wrapped)."""
    import json

    print(json.dumps(value, indent=2, ensure_ascii=False))


# ---- help layout -----------------------------------------------------------------------------

_TYPE_NAMES = {
    "int": "N",
    "int range": "N",
    "float": "NUMBER",
    "float range": "NUMBER",
    "str": "TEXT",
    "path": "PATH",
    "file": "PATH",
}


def _readable(param: Any, ctx: Any) -> None:
    """Flags get no metavar (``--json``, not ``--json <bool>``), values an upper-case one, and
    arguments their name alone (``PROMPT``, not ``PROMPT <str>``)."""
    _no_pydantic_for_plain_values(param)
    if isinstance(param, TyperArgument):
        param.metavar = param.metavar or (param.name or "arg").upper()
        param.display_type_rich = _no_type  # type: ignore[method-assign]
    elif param.metavar is not None or not isinstance(param, TyperOption):
        return
    elif param.is_flag or param.count:
        param.metavar = ""
    else:
        label = param.display_type(ctx).strip("<>")
        param.metavar = _TYPE_NAMES.get(label.lower(), label.upper())


def _no_pydantic_for_plain_values(param: Any) -> None:
    """Typer checks every parameter's value with a pydantic TypeAdapter that it builds on first
    use, even for a value that is absent; building one loads pydantic's schema machinery (a quarter
    of a second at start-up). Flags and text options get Typer's own pass-through check (the
    parser's value is already a bool or a str); other types build their adapter only when a value
    is actually given. Nothing changes when Typer's internals are not as expected."""
    try:
        from typer import _coercion

        if param._runtime_param is not None:
            return
        desc = param.type_descriptor
        if desc.annotation in (bool, str):
            param._runtime_param = _coercion.PassThroughRuntimeParam(
                parameter_info=desc.parameter_info, annotation=desc.annotation
            )
        else:
            param._runtime_param = _lazy_runtime_param()(
                parameter_info=desc.parameter_info, annotation=desc.annotation
            )
    except (ImportError, AttributeError, TypeError):
        return


@functools.cache
def _lazy_runtime_param() -> Any:
    from typer._coercion import RuntimeParam, build_runtime_param

    class Lazy(RuntimeParam):
        """Builds the real check on the first value (an absent one needs none)."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            real = build_runtime_param(param.type_descriptor)
            param._runtime_param = real
            return real._coerce_value(value, param=param, ctx=ctx)

    return Lazy


def _no_type(ctx: Any) -> None:
    return None


def _all_readable(params: list[Any], ctx: Any) -> list[Any]:
    for p in params:
        _readable(p, ctx)
    return params


class Command(TyperCommand):
    """Usage ``pixelpipe generate [OPTIONS] PROMPT`` (not ``{prompt}``), flags without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _all_readable(super().get_params(ctx), ctx)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if isinstance(p, TyperArgument):
                name = p.metavar or (p.name or "arg").upper()
                pieces.append(name if p.required else f"[{name}]")
        return pieces


class Group(TyperGroup):
    """The top-level and ``keys``/``budgets`` groups, with the same help layout."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _all_readable(super().get_params(ctx), ctx)


def print_remote(gen: Any, server: str, output: Path | None) -> None:
    """One line about a generation that succeeded on ``server`` (a ``GenerationPublic``, which
    this module may not import), then its image's URL, or the file it was saved to."""
    out().print(
        f"[bold green]succeeded[/] {gen.id}  model={gen.model}  cost={money(gen.cost.micros)}"
        f"  cached={'yes' if gen.cached else 'no'}  {gen.timings.duration_s}s"
    )
    url = str(gen.image.url)
    url = server.rstrip("/") + url if url.startswith("/") else url
    out().print(f"saved to {output}" if output else url, markup=False, highlight=False)
