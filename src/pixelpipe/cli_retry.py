"""``pixelpipe retry GEN_ID``: retry a failed or canceled generation — in this process on the
local data directory, or on a server with ``--server URL`` — and wait for the new one. Imports
stay lazy (see :mod:`pixelpipe.cli`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from pixelpipe.cli_output import ApiKey, Server, err, money, out

if TYPE_CHECKING:
    from pixelpipe.client import Client
    from pixelpipe.services import Services


def retry(
    generation: Annotated[str, typer.Argument(metavar="GEN_ID", help="A failed or canceled one")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the new generation")] = False,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Seconds to wait")] = 600.0,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Retry a failed or canceled generation and wait for the new one (it names the old one in
    retry_of); exits 2 when the retry fails too."""
    from pixelpipe.cli_runner import here_or_there

    async def op(svc: Services | None, client: Client | None) -> int:
        if client is not None:
            return await _remote(client, generation, timeout, as_json)
        assert svc is not None
        return await _local(svc, generation, timeout, as_json)

    raise typer.Exit(here_or_there(server, api_key, op, worker=True, timeout_s=60.0))


async def _local(svc: Services, generation: str, wait_s: float, as_json: bool) -> int:
    from pixelpipe.api.schemas import render_job
    from pixelpipe.usecases.batch import wait_many
    from pixelpipe.usecases.retry import retry as retry_job

    sub = await retry_job(svc, generation)
    (job,) = await wait_many(svc, [sub.job], timeout_s=wait_s)
    if as_json:
        print(json.dumps((await render_job(svc, job)).model_dump(), indent=2))
        return 0 if job.status.value == "succeeded" else 2
    return _report(job.id, str(job.status), job.model, job.cost_micros, job.error_detail)


async def _remote(client: Client, generation: str, wait_s: float, as_json: bool) -> int:
    new = await client.retry(generation)
    gen = await client.wait(new.id, timeout_s=wait_s)
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
