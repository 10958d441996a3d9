"""The ``pixelpipe`` command: a thin adapter over the service layer."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from pixelpipe.errors import PixelpipeError
from pixelpipe.settings import Settings, load_settings

app = typer.Typer(
    name="pixelpipe",
    help="Prompt in, durable image out: generate, serve, and account for AI images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except PixelpipeError as exc:
        _die(exc)


def _die(exc: PixelpipeError, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error[/] ({exc.code}): {exc.detail}")
    reason = exc.extra.get("reason")
    if reason:
        err.print(f"reason: {reason}")
    raise typer.Exit(code)


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format='{"t":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}'
        if settings.log_json
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _uvicorn(settings: Settings, worker: bool) -> None:
    import uvicorn

    from pixelpipe.api.app import create_app
    from pixelpipe.security.startup import check_bind

    check_bind(settings)
    gc.set_threshold(20_000, 20, 50)  # fewer, cheaper collections under request load
    uvicorn.run(
        create_app(settings, worker=worker, freeze_gc=True),  # start-up objects: permanent
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )


Host = Annotated[str | None, typer.Option(help="Bind address (PIXELPIPE_HOST)")]
Port = Annotated[int | None, typer.Option(help="Port (PIXELPIPE_PORT)")]


def _run_role(settings: Settings, role: Callable[[Settings], object]) -> None:
    """Start one process role with logging; a configuration error exits 1 with its message."""
    _logging(settings)
    try:
        role(settings)
    except PixelpipeError as exc:
        _die(exc)
    except KeyboardInterrupt:
        pass


@app.command()
def serve(host: Host = None, port: Port = None) -> None:
    """API + web page + worker + sweeper in one process (the embedded default)."""
    _run_role(_settings(host=host, port=port), lambda s: _uvicorn(s, worker=True))


@app.command()
def api(host: Host = None, port: Port = None) -> None:
    """API + web page only (run `pixelpipe worker` processes beside it)."""
    _run_role(_settings(host=host, port=port), lambda s: _uvicorn(s, worker=False))


@app.command()
def worker() -> None:
    """Run pipeline steps (submit, poll, fetch, store) for queued jobs."""
    from pixelpipe.runner import run_worker

    _run_role(_settings(), lambda s: asyncio.run(run_worker(s)))


@app.command()
def sweeper() -> None:
    """Reconcile overdue jobs (exactly one active at a time, however many are started)."""
    from pixelpipe.runner import run_sweeper_process

    _run_role(_settings(), lambda s: asyncio.run(run_sweeper_process(s)))


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from pixelpipe.migrations.runner import upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    out.print("database is at the latest schema")


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw")],
    model: Annotated[str, typer.Option(help="Model name (see GET /v1/models)")] = "preview",
    seed: Annotated[int | None, typer.Option(help="0..4294967295; default random")] = None,
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT")] = None,
    aspect_ratio: Annotated[str | None, typer.Option("--aspect-ratio")] = None,
    format: Annotated[str | None, typer.Option("--format", help="webp, png or jpeg")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Save the image here")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 600.0,
) -> None:
    """Generate one image in-process and print its URL (or save it with -o)."""
    from pixelpipe.pipeline import Pipeline

    settings = _settings()
    params: dict[str, Any] = {
        "model": model,
        "seed": seed,
        "size": size,
        "aspect_ratio": aspect_ratio,
        "format": format,
    }
    params = {k: v for k, v in params.items() if v is not None}

    async def run() -> int:
        async with Pipeline(settings) as p:
            result = await p.generate(prompt, timeout_s=timeout, raise_on_failure=False, **params)
            job = result.job
            if as_json:
                from pixelpipe.api.schemas import render_job

                print(json.dumps((await render_job(p.services, job)).model_dump(), indent=2))
            if job.status.value != "succeeded":
                err.print(f"[bold red]{job.status}[/] ({job.error_code}): {job.error_detail}")
                return 2
            if output is not None and result.image is not None:
                output.write_bytes(result.image)
            if not as_json:
                _print_result(settings, job, result.url, output)
            return 0

    try:
        code = asyncio.run(run())
    except PixelpipeError as exc:
        _die(exc)
    raise typer.Exit(code)


def _print_result(settings: Settings, job: Any, url: str | None, output: Path | None) -> None:
    from pixelpipe.api.schemas import usd

    cost = usd(job.cost_micros) if job.cost_micros is not None else "unpriced"
    out.print(
        f"[bold green]succeeded[/] {job.id}  model={job.model}  cost=${cost}"
        f"  cached={'yes' if job.cached else 'no'}  {job.duration_s}s"
    )
    out.print(f"saved to {output}" if output else url or "")


@app.command("fake-providers")
def fake_providers(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 9100,
) -> None:
    """Run protocol-faithful fake Replicate, fal and OpenAI servers (offline demos and tests)."""
    from pixelpipe.fakes.server import run_fake_providers

    run_fake_providers(host, port)


def _register_subcommands() -> None:
    from pixelpipe.cli_costs import budgets_app, usage

    app.command("usage")(usage)
    app.add_typer(budgets_app, name="budgets")

    from pixelpipe.cli_batch import batch, compare, webhook_secret_cmd

    app.command("batch")(batch)
    app.command("compare")(compare)
    app.command("webhook-secret")(webhook_secret_cmd)

    from pixelpipe.cli_keys import keys_app

    app.add_typer(keys_app, name="keys")


_register_subcommands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
