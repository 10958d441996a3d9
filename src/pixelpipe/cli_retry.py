"""``pixelpipe retry GEN_ID``: retry a failed or canceled generation — in this process on the
local data directory, or on a server with ``--server URL`` — and wait for the new one. Imports
stay lazy (see :mod:`pixelpipe.cli`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from pixelpipe.cli_output import (
    ApiKey,
    Server,
    die,
    err,
    load_settings_or_die,
    money,
    out,
    unreachable,
)

if TYPE_CHECKING:
    from pixelpipe.settings import Settings


def retry(
    generation: Annotated[str, typer.Argument(metavar="GEN_ID", help="A failed or canceled one")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the new generation")] = False,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Seconds to wait")] = 600.0,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Retry a failed or canceled generation and wait for the new one (it names the old one in
    retry_of); exits 2 when the retry fails too."""
    import asyncio

    from pixelpipe.errors import PixelpipeError

    try:
        if server:
            code = asyncio.run(_remote(generation, server, api_key, timeout, as_json))
        else:
            code = asyncio.run(_local(generation, load_settings_or_die(), timeout, as_json))
    except PixelpipeError as exc:
        die(exc)
    raise typer.Exit(code)


async def _local(generation: str, settings: Settings, wait_s: float, as_json: bool) -> int:
    from pixelpipe.api.schemas import render_job
    from pixelpipe.pipeline import Pipeline
    from pixelpipe.usecases.batch import wait_many
    from pixelpipe.usecases.retry import retry as retry_job

    async with Pipeline(settings) as p:
        sub = await retry_job(p.services, generation)
        (job,) = await wait_many(p.services, [sub.job], timeout_s=wait_s)
        if as_json:
            print(json.dumps((await render_job(p.services, job)).model_dump(), indent=2))
            return 0 if job.status.value == "succeeded" else 2
        return _report(job.id, str(job.status), job.model, job.cost_micros, job.error_detail)


async def _remote(
    generation: str, server: str, api_key: str | None, wait_s: float, as_json: bool
) -> int:
    import httpx

    from pixelpipe.client import Client

    try:
        async with Client(server, api_key=api_key, timeout=60.0) as client:
            new = await client.retry(generation)
            gen = await client.wait(new.id, timeout_s=wait_s)
    except httpx.TransportError as exc:
        unreachable(server, exc)
    if as_json:
        print(json.dumps(gen.model_dump(mode="json"), indent=2))
        return 0 if gen.status == "succeeded" else 2
    detail = gen.error.detail if gen.error else None
    return _report(gen.id, gen.status, gen.model, gen.cost.micros, detail)


def _report(gen_id: str, status: str, model: str, micros: int | None, error: str | None) -> int:
    if status != "succeeded":
        err().print(f"[bold red]{status}[/] {gen_id}: {error or ''}")
        return 2
    out().print(f"[bold green]succeeded[/] {gen_id}  model={model}  cost={money(micros)}")
    return 0
