"""``pixelpipe edit IMAGE... PROMPT``: edit images in this process, like ``pixelpipe generate``,
or on a server with ``--server URL``.

Each IMAGE is a file (verified, stripped of its metadata and stored like ``POST /v1/uploads``),
an upload id (``upl_…``), a generation id of this data directory (of the server's, with
``--server``), or an https URL (fetched through the fetch guard). ``--mask`` takes the same. The
edit runs through the whole pipeline (content key, cache, budget, lineage): on the local data
directory, or on the server, where files are sent to ``POST /v1/uploads`` first. Imports stay
lazy (see :mod:`pixelpipe.cli`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pixelpipe.cli_output import (
    ApiKey,
    Server,
    die,
    err,
    load_settings_or_die,
    money,
    out,
    print_remote,
    unreachable,
)

if TYPE_CHECKING:
    from pixelpipe.client import Client
    from pixelpipe.services import Services
    from pixelpipe.settings import Settings


def edit(
    images: Annotated[
        list[str],
        typer.Argument(
            metavar="IMAGE...", help="Files, upload ids (upl_…), generation ids or https URLs"
        ),
    ],
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="What to change")],
    mask: Annotated[
        str | None,
        typer.Option(metavar="MASK", help="Where to edit (a file, upload id or URL)"),
    ] = None,
    model: Annotated[
        str, typer.Option(metavar="MODEL", help="A model that takes input images")
    ] = "preview",
    seed: Annotated[
        int | None, typer.Option(metavar="N", help="0..4294967295; default random")
    ] = None,
    size: Annotated[str | None, typer.Option(metavar="WxH", help="WIDTHxHEIGHT")] = None,
    strength: Annotated[
        float | None, typer.Option(metavar="S", help="Image-to-image strength (models with one)")
    ] = None,
    input_fidelity: Annotated[
        str | None,
        typer.Option(metavar="low|high", help="How closely to keep the inputs (gpt-image-*)"),
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", metavar="FORMAT", help="webp, png or jpeg")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Save the image here")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the generation as JSON")] = False,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Seconds to wait")] = 600.0,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Edit IMAGE(s) as PROMPT says and print the new image's URL (or save it with -o);
    --server runs it on a server (files are uploaded to it first)."""
    import asyncio

    from pixelpipe.errors import PixelpipeError

    params: dict[str, Any] = {
        "model": model,
        "seed": seed,
        "size": size,
        "strength": strength,
        "input_fidelity": input_fidelity,
        "format": format,
    }
    params = {k: v for k, v in params.items() if v is not None}
    try:
        sources = [read_source(image, "image") for image in images]
        job = _Edit(sources, read_source(mask, "mask") if mask else None, prompt, params, timeout)
        if server:
            code = asyncio.run(job.remote(server, api_key, output, as_json))
        else:
            code = asyncio.run(job.run(load_settings_or_die(), output, as_json))
    except PixelpipeError as exc:
        die(exc)
    raise typer.Exit(code)


class _Edit:
    def __init__(
        self,
        images: list[bytes | str],
        mask: bytes | str | None,
        prompt: str,
        params: dict[str, Any],
        timeout: float,
    ) -> None:
        self.images, self.mask, self.prompt = images, mask, prompt
        self.params, self.timeout = params, timeout

    async def run(self, settings: Settings, output: Path | None, as_json: bool) -> int:
        import asyncio

        from pixelpipe.pipeline import Pipeline

        async with Pipeline(settings) as p:
            svc = p.services
            refs = [await reference(svc, image, "image") for image in self.images]
            params = {**self.params, "images": refs}
            if self.mask is not None:
                params["mask"] = await reference(svc, self.mask, "mask")
            result = await p.generate(
                self.prompt, timeout_s=self.timeout, raise_on_failure=False, **params
            )
            job = result.job
            if as_json:
                from pixelpipe.api.schemas import render_job

                print(json.dumps((await render_job(svc, job)).model_dump(), indent=2))
            if job.status.value != "succeeded":
                err().print(f"[bold red]{job.status}[/] ({job.error_code}): {job.error_detail}")
                return 2
            if output is not None and result.image is not None:
                await asyncio.to_thread(output.write_bytes, result.image)
            if not as_json:
                cost = (
                    "$0.0000 (cache)"
                    if job.cached and not job.cost_micros
                    else money(job.cost_micros)
                )
                out().print(
                    f"[bold green]succeeded[/] {job.id}  model={job.model}  cost={cost}"
                    f"  cached={'yes' if job.cached else 'no'}"
                )
                shown = f"saved to {output}" if output else result.url or ""
                out().print(shown, markup=False, highlight=False)
            return 0

    async def remote(
        self, server: str, api_key: str | None, output: Path | None, as_json: bool
    ) -> int:
        """The edit on ``server``: each file uploaded (``POST /v1/uploads``), then generated."""
        import asyncio

        import httpx

        from pixelpipe.client import Client

        try:
            async with Client(server, api_key=api_key, timeout=60.0) as client:
                refs = [await _remote_ref(client, image) for image in self.images]
                params = {**self.params, "images": refs}
                if self.mask is not None:
                    params["mask"] = await _remote_ref(client, self.mask)
                gen = await client.generate(
                    self.prompt, timeout_s=self.timeout, raise_on_failure=False, **params
                )
                if as_json:
                    print(json.dumps(gen.model_dump(mode="json"), indent=2))
                if gen.status != "succeeded" or gen.image is None:
                    code, detail = (gen.error.code, gen.error.detail) if gen.error else ("-", "")
                    err().print(f"[bold red]{gen.status}[/] ({code}): {detail}")
                    return 2
                if output is not None:
                    data = await client.download(gen)
                    await asyncio.to_thread(output.write_bytes, data)
        except httpx.TransportError as exc:
            unreachable(server, exc)
        if not as_json:
            print_remote(gen, server, output)
        return 0


async def _remote_ref(client: Client, source: bytes | str) -> str:
    """A file's bytes uploaded to the server (its upload id); a reference passed on."""
    if isinstance(source, str):
        return source
    return (await client.upload(source)).id


def read_source(value: str, field: str) -> bytes | str:
    """A file's bytes; an upload id, generation id or URL as it is."""
    from pixelpipe.errors import InvalidRequest

    if value.startswith(("https://", "http://")):
        return value
    path = Path(value)
    if path.is_file():
        return path.read_bytes()
    if value.startswith(("upl_", "gen_")):
        return value
    raise InvalidRequest(f"{field}: {value} is not a file, an upload id or a URL", field=field)


async def reference(svc: Services, source: bytes | str, field: str) -> str:
    """What a generation request takes: a file's bytes become an upload id (verified, stripped
    and stored like ``POST /v1/uploads``); a reference is passed on."""
    from pixelpipe.inputs import InputLimits, store_input

    if isinstance(source, str):
        return source
    limits = InputLimits.from_settings(svc.settings)
    return (await store_input(svc.storage, source, limits, field=field)).id
