"""``pixelpipe queue``: see and steer the queue (docs/queue.md) — in this process on the local
data directory (the database a local server shares), or on a server with ``--server URL``.

``pixelpipe queue`` shows what runs and waits on each provider or backend (``--watch`` keeps it
on screen); ``priority``, ``cancel``, ``pause``, ``resume``, ``held`` and ``release`` steer it.
Both ways answer the same JSON (``--json``); imports stay lazy (see :mod:`pixelpipe.cli`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from pixelpipe.cli_output import ApiKey, Command, Group, Server, out

queue_app = typer.Typer(
    cls=Group,
    help="See and steer the queue: positions, priorities, pauses, quarantined jobs.",
    invoke_without_command=True,
)
AsJson = Annotated[bool, typer.Option("--json", help="Print the answer as JSON")]
Call = Callable[[Any], Awaitable[Any]]  # (services) -> a JSON-ready answer


@queue_app.callback()
def show(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", help="Redraw every --every seconds")] = False,
    every: Annotated[float, typer.Option(metavar="SECONDS", min=0.2)] = 2.0,
    as_json: AsJson = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Running and waiting jobs per provider or backend: position, priority, progress, ETA."""
    if ctx.invoked_subcommand is not None:
        return
    while True:
        answer = _run(server, api_key, "GET", "/v1/queue", None, _local_view)
        if as_json:
            print(json.dumps(answer, indent=2))
        else:
            if watch:
                out().clear()
            _print_queue(answer)
        if not watch:
            return
        time.sleep(every)


@queue_app.command("priority", cls=Command)
def priority(
    generation: Annotated[str, typer.Argument(metavar="GEN_ID")],
    value: Annotated[int, typer.Argument(metavar="PRIORITY", min=0, max=9, help="0-9, high first")],
    as_json: AsJson = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Move a waiting job up or down the queue (within your key's ceiling)."""

    async def local(svc: Any) -> Any:
        from pixelpipe.api.routes_queue import _job
        from pixelpipe.security.caller import Caller
        from pixelpipe.usecases import queue

        return _job(await queue.set_priority(svc, generation, value), Caller()).model_dump()

    path = f"/v1/queue/jobs/{generation}/priority"
    job = _run(server, api_key, "POST", path, {"priority": value}, local)
    _done(job, as_json, f"{job['id']}: priority {job['priority']}")


@queue_app.command("cancel", cls=Command)
def cancel(
    generations: Annotated[list[str], typer.Argument(metavar="GEN_ID...")],
    as_json: AsJson = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Cancel many jobs at once; prints each one's outcome (exits 2 if any was not canceled)."""

    async def local(svc: Any) -> Any:
        from pixelpipe.usecases import queue

        done = await queue.cancel_many(svc, generations)
        return {"data": [{"id": r.id, "status": r.status, "detail": r.detail} for r in done]}

    answer = _run(server, api_key, "POST", "/v1/queue/cancel", {"ids": generations}, local)
    if as_json:
        print(json.dumps(answer, indent=2))
    else:
        for r in answer["data"]:
            out().print(f"{r['id']}: {r['status']}" + (f" ({r['detail']})" if r["detail"] else ""))
    if any(r["status"] != "canceled" for r in answer["data"]):
        raise typer.Exit(2)


@queue_app.command("pause", cls=Command)
def pause(
    target: Annotated[str, typer.Argument(metavar="PROVIDER", help="A provider or backend")],
    reason: Annotated[str | None, typer.Option(help="Shown with the pause")] = None,
    as_json: AsJson = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Pause (drain) a provider or backend: running jobs finish, waiting ones wait (admin)."""

    async def local(svc: Any) -> Any:
        from pixelpipe.api.routes_queue import _pause
        from pixelpipe.usecases import queue

        paused = _pause(await queue.pause(svc, target, reason))
        return paused.model_dump() if paused else None

    path = f"/v1/admin/queue/pauses/{target}"
    answer = _run(server, api_key, "POST", path, {"reason": reason}, local)
    _done(answer, as_json, f"{target}: paused since {answer['paused_at']}")


@queue_app.command("resume", cls=Command)
def resume(
    target: Annotated[str, typer.Argument(metavar="PROVIDER")],
    as_json: AsJson = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Resume a paused provider or backend (admin)."""

    async def local(svc: Any) -> Any:
        from pixelpipe.usecases import queue

        return {"target": target, "resumed": await queue.resume(svc, target)}

    answer = _run(server, api_key, "DELETE", f"/v1/admin/queue/pauses/{target}", None, local)
    _done(answer, as_json, f"{target}: {'resumed' if answer['resumed'] else 'was not paused'}")


@queue_app.command("held", cls=Command)
def held(as_json: AsJson = False, server: Server = None, api_key: ApiKey = None) -> None:
    """Quarantined (poison) jobs, with why each was held (admin)."""

    async def local(svc: Any) -> Any:
        from pixelpipe.api.routes_queue import _job
        from pixelpipe.security.caller import Caller
        from pixelpipe.usecases import queue

        return [_job(j, Caller()).model_dump() for j in await queue.held(svc)]

    answer = _run(server, api_key, "GET", "/v1/admin/queue/held", None, local)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    if not answer:
        out().print("no quarantined jobs")
    for j in answer:
        out().print(f"{j['id']}  {j['model']} on {j['provider']}: {j['held_reason']}", markup=False)


@queue_app.command("release", cls=Command)
def release(
    generation: Annotated[str, typer.Argument(metavar="GEN_ID")],
    as_json: AsJson = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Let a quarantined job run again (admin); `pixelpipe queue cancel` drops it instead."""

    async def local(svc: Any) -> Any:
        from pixelpipe.api.routes_queue import _job
        from pixelpipe.security.caller import Caller
        from pixelpipe.usecases import queue

        return _job(await queue.release(svc, generation), Caller()).model_dump()

    path = f"/v1/admin/queue/held/{generation}/release"
    job = _run(server, api_key, "POST", path, None, local)
    _done(job, as_json, f"{job['id']}: released")


async def _local_view(svc: Any) -> Any:
    from pixelpipe.api.routes_queue import render
    from pixelpipe.security.caller import Caller
    from pixelpipe.usecases import queue

    return render(await queue.view(svc), Caller()).model_dump()


def _done(answer: Any, as_json: bool, line: str) -> None:
    if as_json:
        print(json.dumps(answer, indent=2))
    else:
        out().print(line, markup=False)


def _run(
    server: str | None, api_key: str | None, method: str, path: str, body: Any, local: Call
) -> Any:
    """The answer of ``method path`` on ``server``, or of ``local`` in this process."""
    from pixelpipe.cli_runner import here_or_there

    async def op(svc: Any, client: Any) -> Any:
        if client is not None:
            return await client.call_json(method, path, body)
        return await local(svc)

    return here_or_there(server, api_key, op, timeout_s=60.0)


def _print_queue(answer: dict[str, Any]) -> None:
    from pixelpipe.cli_output import table

    console = out()
    if not answer["lines"]:
        console.print("the queue is empty")
    for line in answer["lines"]:
        paused = line["paused"]
        state = f"  PAUSED ({paused['reason'] or 'no reason given'})" if paused else ""
        title = (
            f"{line['target']}: {len(line['running'])} running, {line['waiting_total']} waiting, "
            f"{line['capacity']} at once{state}"
        )
        rows = table(title, ["#", "id", "status", "priority", "progress", "eta", "model"])
        for j in line["running"] + line["waiting"]:
            rows.add_row(
                str(j["position"] or "-"),
                j["id"],
                j["status"],
                str(j["priority"]),
                _progress(j["progress"]),
                f"{j['eta_s']:.0f} s" if j["eta_s"] is not None else "-",
                j["model"],
            )
        console.print(rows)
    for j in answer["held"]:
        console.print(f"held {j['id']}: {j['held_reason']}", markup=False)


def _progress(progress: dict[str, Any]) -> str:
    fraction = progress.get("fraction")
    return f"{100 * fraction:.0f} %" if isinstance(fraction, int | float) else "-"
