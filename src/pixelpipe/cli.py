"""The ``pixelpipe`` command: a thin adapter over the use cases (:mod:`pixelpipe.usecases`).

Start-up is lazy: this module imports Typer and the standard library only, and each command imports
what it needs (settings, the database, FastAPI, Pillow, providers…) when it runs, so ``--help`` and
the small commands answer at once (``tests/core/test_cli_startup.py`` holds it to that).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pixelpipe.cli_batch import batch, compare, webhook_secret_cmd
from pixelpipe.cli_costs import budgets_app, usage
from pixelpipe.cli_edit import edit
from pixelpipe.cli_gallery import boards_app, gallery_app
from pixelpipe.cli_keys import keys_app
from pixelpipe.cli_output import (
    ApiKey,
    Command,
    Group,
    Server,
    die,
    err,
    load_settings_or_die,
    money,
    out,
    print_remote,
    unreachable,
)
from pixelpipe.cli_queue import queue_app
from pixelpipe.cli_retry import retry

if TYPE_CHECKING:
    from pixelpipe.api.schemas import GenerationPublic
    from pixelpipe.client import Client
    from pixelpipe.pipeline import GenerationResult, Pipeline
    from pixelpipe.settings import Settings

app = typer.Typer(
    name="pixelpipe",
    cls=Group,
    help="Prompt in, durable image out: generate, serve, and account for AI images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _logging(settings: Settings) -> None:
    import logging

    logging.basicConfig(
        level=settings.log_level.upper(),
        format='{"t":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}'
        if settings.log_json
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO with its full URL: a line per provider call and output
    # fetch on the hot path, and an output's URL may carry a signature (no secret in logs)
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))


def _uvicorn(settings: Settings, worker: bool) -> None:
    import gc

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


DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000  # as Settings.host / Settings.port (a test checks)
Host = Annotated[
    str | None,
    typer.Option(
        metavar="ADDRESS",
        help=f"Bind address (PIXELPIPE_HOST; default {DEFAULT_HOST}); any other than loopback "
        "needs an API key first",
    ),
]
Port = Annotated[
    int | None,
    typer.Option(metavar="PORT", help=f"Port (PIXELPIPE_PORT; default {DEFAULT_PORT})"),
]


def _run_role(settings: Settings, role: Callable[[Settings], object]) -> None:
    """Start one process role with logging; a configuration error exits 1 with its message."""
    from pixelpipe.errors import PixelpipeError

    _logging(settings)
    try:
        role(settings)
    except PixelpipeError as exc:
        die(exc)
    except KeyboardInterrupt:
        pass


@app.command(cls=Command)
def serve(host: Host = None, port: Port = None) -> None:
    """API + web page + worker + sweeper in one process (the embedded default)."""
    _run_role(load_settings_or_die(host=host, port=port), lambda s: _uvicorn(s, worker=True))


@app.command(cls=Command)
def api(host: Host = None, port: Port = None) -> None:
    """API + web page only (run `pixelpipe worker` processes beside it)."""
    _run_role(load_settings_or_die(host=host, port=port), lambda s: _uvicorn(s, worker=False))


@app.command(cls=Command)
def worker() -> None:
    """Run pipeline steps (submit, poll, fetch, store) for queued jobs."""
    import asyncio

    from pixelpipe.runner import run_worker

    _run_role(load_settings_or_die(), lambda s: asyncio.run(run_worker(s)))


@app.command(cls=Command)
def sweeper() -> None:
    """Reconcile overdue jobs (exactly one active at a time, however many are started)."""
    import asyncio

    from pixelpipe.runner import run_sweeper_process

    _run_role(load_settings_or_die(), lambda s: asyncio.run(run_sweeper_process(s)))


@app.command(cls=Command)
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from pixelpipe.migrations.runner import upgrade

    settings = load_settings_or_die()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    out().print("database is at the latest schema")


@app.command(cls=Command)
def generate(
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="What to draw")],
    model: Annotated[
        str, typer.Option(metavar="MODEL", help="Model name (see GET /v1/models)")
    ] = "preview",
    seed: Annotated[
        int | None, typer.Option(metavar="N", help="0..4294967295; default random")
    ] = None,
    size: Annotated[str | None, typer.Option(metavar="WxH", help="WIDTHxHEIGHT")] = None,
    aspect_ratio: Annotated[
        str | None, typer.Option("--aspect-ratio", metavar="W:H", help="e.g. 16:9 (or --size)")
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", metavar="FORMAT", help="webp, png or jpeg")
    ] = None,
    quality: Annotated[
        str | None,
        typer.Option(metavar="TIER", help="Model-specific quality tier (gpt-image-1, dall-e-3)"),
    ] = None,
    negative_prompt: Annotated[
        str | None,
        typer.Option(
            "--negative-prompt", metavar="TEXT", help="What to avoid (models that support it)"
        ),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(metavar="N", help="Inference steps, within the model's range")
    ] = None,
    guidance: Annotated[
        float | None,
        typer.Option(metavar="SCALE", help="Guidance scale, within the model's range"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Save the image here")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the generation as JSON")] = False,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Seconds to wait")] = 600.0,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Print its progress (queue position, percent, ETA) to stderr meanwhile"
        ),
    ] = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Generate one image and print its URL (or save it with -o); --server runs it on a server.

    By default the pipeline runs in this process, on the local data directory (as `pixelpipe
    serve` would); with --server URL it runs on that server through the Python Client. --watch
    follows its events meanwhile: a line on stderr each time its status or progress changes.
    """
    import asyncio

    from pixelpipe.errors import PixelpipeError

    params: dict[str, Any] = {
        "model": model,
        "seed": seed,
        "size": size,
        "aspect_ratio": aspect_ratio,
        "format": format,
        "quality": quality,
        "negative_prompt": negative_prompt,
        "steps": steps,
        "guidance": guidance,
    }
    params = {k: v for k, v in params.items() if v is not None}
    job = _Generate(prompt, params, timeout, output, as_json, _Watch() if watch else None)
    try:
        if server:
            code = asyncio.run(job.remote(server, api_key))
        else:
            code = asyncio.run(job.local(load_settings_or_die()))
    except PixelpipeError as exc:
        die(exc)
    raise typer.Exit(code)


class _Generate:
    """One ``pixelpipe generate``, in this process or through :class:`~pixelpipe.client.Client`."""

    def __init__(
        self,
        prompt: str,
        params: dict[str, Any],
        timeout: float,
        output: Path | None,
        as_json: bool,
        watch: _Watch | None = None,
    ) -> None:
        self.prompt, self.params, self.timeout = prompt, params, timeout
        self.output, self.as_json, self.watch = output, as_json, watch

    async def local(self, settings: Settings) -> int:
        from pixelpipe.pipeline import Pipeline

        async with Pipeline(settings) as p:
            if self.watch is None:
                result = await p.generate(
                    self.prompt, timeout_s=self.timeout, raise_on_failure=False, **self.params
                )
            else:
                result = await self._watched_here(p, self.watch)
            job = result.job
            if self.as_json:
                from pixelpipe.api.schemas import render_job

                print(json.dumps((await render_job(p.services, job)).model_dump(), indent=2))
            if job.status.value != "succeeded":
                err().print(f"[bold red]{job.status}[/] ({job.error_code}): {job.error_detail}")
                return 2
            if self.output is not None and result.image is not None:
                self.output.write_bytes(result.image)
            if not self.as_json:
                _print_result(settings, job, result.url, self.output)
            return 0

    async def remote(self, server: str, api_key: str | None) -> int:
        import httpx

        from pixelpipe.client import Client

        try:
            async with Client(server, api_key=api_key, timeout=60.0) as client:
                if self.watch is None:
                    gen = await client.generate(
                        self.prompt, timeout_s=self.timeout, raise_on_failure=False, **self.params
                    )
                else:
                    gen = await self._watched_there(client, self.watch)
                if self.as_json:
                    print(json.dumps(gen.model_dump(mode="json"), indent=2))
                if gen.status != "succeeded" or gen.image is None:
                    code, detail = (gen.error.code, gen.error.detail) if gen.error else ("-", "")
                    err().print(f"[bold red]{gen.status}[/] ({code}): {detail}")
                    return 2
                if self.output is not None:
                    self.output.write_bytes(await client.download(gen))
        except httpx.TransportError as exc:
            unreachable(server, exc)
        if not self.as_json:
            print_remote(gen, server, self.output)
        return 0

    async def _watched_there(self, client: Client, watch: _Watch) -> GenerationPublic:
        """Submit on the server, show its events as they come, then the generation."""
        gen = await client.submit(self.prompt, **self.params)
        if gen.status in ("succeeded", "failed", "canceled"):  # a cache hit: no events to follow
            watch.show(gen.status, gen.progress)
            return gen
        # the stream replays the job's events from its first (queued): the status the submit
        # answered with (queued, or already submitting) is one of them
        async for event in client.stream(gen.id, timeout_s=self.timeout):
            watch.show(event.status, event.progress)
        return await client.get(gen.id)

    async def _watched_here(self, p: Pipeline, watch: _Watch) -> GenerationResult:
        """Submit in this process, show its events as they come, then the result."""
        import asyncio

        from pixelpipe.pipeline import GenerationResult
        from pixelpipe.usecases.events import follow_job, with_progress
        from pixelpipe.usecases.images import image_bytes, local_image_url

        async def stay() -> bool:
            return False

        job = await p.submit(self.prompt, **self.params)
        if job.status.terminal:  # a cache hit: no events to follow
            shown = await with_progress(p.services, job)
            watch.show(str(job.status), shown.provider_state.get("progress") or {})
        async with asyncio.timeout(self.timeout):  # its events from the first (queued) on
            async for ev, at in follow_job(p.services, job.id, 0, stay):
                status = str(ev.data.get("status")) if ev.type == "status" else None
                progress = ev.data if ev.type == "progress" else None
                if at is not None:
                    progress = at.provider_state.get("progress") or {}
                watch.show(status, progress or {})
        job = await p.get(job.id)
        if job.status.value != "succeeded":
            return GenerationResult(job, None, None)
        svc = p.services
        return GenerationResult(job, await local_image_url(svc, job), await image_bytes(svc, job))


class _Watch:
    """``--watch``: one line on stderr each time the status or the progress shown changes."""

    def __init__(self) -> None:
        self.status = "queued"
        self.last = ""

    def show(self, status: str | None, progress: dict[str, Any]) -> None:
        self.status = status or self.status
        line = watch_line(self.status, progress)
        if line != self.last:
            err().print(line, markup=False, highlight=False)
            self.last = line


def watch_line(status: str, progress: dict[str, Any]) -> str:
    """``queued  position 2  eta 12s`` / ``waiting  40%  step 8/20  eta 4.5s``."""
    parts = [status]
    position = progress.get("queue_position")
    if isinstance(position, int) and status == "queued":
        parts.append(f"position {position}")
    percent = progress.get("percent")
    if isinstance(percent, int | float) and status not in ("queued", "succeeded"):
        parts.append(f"{percent:.0f}%")
    step, steps = progress.get("step"), progress.get("steps")
    if isinstance(step, int) and isinstance(steps, int):
        parts.append(f"step {step}/{steps}")
    eta = progress.get("eta_s")
    if isinstance(eta, int | float):
        parts.append(f"eta {eta:.0f}s" if eta >= 10 else f"eta {eta:.1f}s")
    return "  ".join(parts)


def _print_result(settings: Settings, job: Any, url: str | None, output: Path | None) -> None:
    cost = "$0.0000 (cache)" if job.cached and not job.cost_micros else money(job.cost_micros)
    out().print(
        f"[bold green]succeeded[/] {job.id}  model={job.model}  cost={cost}"
        f"  cached={'yes' if job.cached else 'no'}  {job.duration_s}s"
    )
    out().print(f"saved to {output}" if output else url or "", markup=False, highlight=False)


@app.command("fake-providers", cls=Command)
def fake_providers(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port")] = 9100,
) -> None:
    """Run protocol-faithful fakes of hosted providers and self-hosted servers, offline.

    Replicate, fal and OpenAI; AUTOMATIC1111 and OpenAI-compatible image servers (cog needs none:
    the real server runs without a GPU). For demos and tests."""
    from pixelpipe.fakes.server import run_fake_providers

    run_fake_providers(host, port)


app.command("usage", cls=Command)(usage)
app.add_typer(budgets_app, name="budgets")
app.command("edit", cls=Command)(edit)
app.command("retry", cls=Command)(retry)
app.command("batch", cls=Command)(batch)
app.command("compare", cls=Command)(compare)
app.command("webhook-secret", cls=Command)(webhook_secret_cmd)
app.add_typer(keys_app, name="keys")
app.add_typer(gallery_app, name="gallery")
app.add_typer(boards_app, name="boards")
app.add_typer(queue_app, name="queue")


def main() -> None:
    try:
        app(prog_name="pixelpipe")
    except KeyboardInterrupt:
        sys.exit(130)
