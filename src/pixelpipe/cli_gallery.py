"""``pixelpipe gallery`` (list with filters and sort, download a zip, delete, favourites) and
``pixelpipe boards`` (create, rename, delete, add, remove, list): in this process on the local
data directory, or on a server with ``--server URL``. Imports stay lazy (see :mod:`pixelpipe.cli`).

Both ways run the same use cases (``usecases/gallery.py``, ``usecases/boards.py``): in process
directly, over HTTP through :class:`pixelpipe.client.Client`. In process the caller is the local
operator (no API key): its boards are the key-less ones, as on the page with auth off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from pixelpipe.cli_output import (
    ApiKey,
    Command,
    Group,
    Server,
    err,
    money,
    out,
    print_json,
    table,
)

if TYPE_CHECKING:
    from pixelpipe.client import Client
    from pixelpipe.services import Services

T = TypeVar("T")

gallery_app = typer.Typer(
    cls=Group, help="The gallery: filter, sort, download as a zip, delete.", no_args_is_help=True
)
boards_app = typer.Typer(
    cls=Group, help="Boards: named groups of generations (per API key).", no_args_is_help=True
)

Ids = Annotated[list[str], typer.Argument(metavar="GEN_ID...", help="Generation ids")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _run(server: str | None, api_key: str | None, op: Callable[..., Awaitable[T]]) -> T:
    """``op(svc, None)`` in this process, or ``op(None, client)`` against ``server``."""
    from pixelpipe.cli_runner import here_or_there

    return here_or_there(server, api_key, op)


# ---- pixelpipe gallery ------------------------------------------------------------------------


@gallery_app.command("list", cls=Command)
def gallery_list(
    model: Annotated[str, typer.Option(help="Only this model")] = "",
    provider: Annotated[str, typer.Option(help="Only this provider")] = "",
    status: Annotated[str, typer.Option(help="succeeded, failed, canceled, …")] = "",
    since: Annotated[str, typer.Option(metavar="DATE", help="From YYYY-MM-DD (or ISO)")] = "",
    until: Annotated[str, typer.Option(metavar="DATE", help="To YYYY-MM-DD, that day too")] = "",
    board: Annotated[str, typer.Option(metavar="BOARD_ID", help="Only this board")] = "",
    favourite: Annotated[bool, typer.Option("--favourite", help="Only favourites")] = False,
    cost_min: Annotated[str, typer.Option(metavar="USD", help="At least, e.g. 0.01")] = "",
    cost_max: Annotated[str, typer.Option(metavar="USD", help="At most, e.g. 0.05")] = "",
    sort: Annotated[str, typer.Option(help="newest, oldest, cost_desc, cost_asc")] = "newest",
    q: Annotated[str, typer.Option("--search", help="Words in the prompt")] = "",
    limit: Annotated[int, typer.Option(help="How many (1-100)")] = 30,
    cursor: Annotated[str, typer.Option(help="next_cursor of the previous page")] = "",
    as_json: AsJson = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """List generations matching the filters, in the chosen order."""
    filters: dict[str, Any] = {
        "model": model, "provider": provider, "status": status, "since": since, "until": until,
        "board": board, "favourite": favourite, "cost_min": cost_min, "cost_max": cost_max,
        "sort": sort, "q": q, "cursor": cursor, "limit": limit,
    }  # fmt: skip

    async def op(svc: Services | None, client: Client | None) -> dict[str, Any]:
        if client is not None:
            return (await client.gallery(**filters)).model_dump(mode="json")
        assert svc is not None
        return await _page_here(svc, filters)

    page = _run(server, api_key, op)
    if as_json:
        print_json(page)
        return
    t = table(None, ["id", "status", "model", "cost", "fav", "prompt"], ids=("id",))
    for g in page["data"]:
        micros = g["cost"]["micros"]
        t.add_row(g["id"], g["status"], g["model"], money(micros), "★" if g["favourite"] else "",
                  g["request"]["prompt"][:60])  # fmt: skip
    out().print(t)
    if page["next_cursor"]:
        err().print(f"more: --cursor {page['next_cursor']}")


async def _page_here(svc: Services, filters: dict[str, Any]) -> dict[str, Any]:
    from pixelpipe.notify.public import job_payload
    from pixelpipe.usecases.gallery import GalleryQuery, gallery_page

    page = await gallery_page(svc, GalleryQuery(**filters))
    data = []
    for job in page.jobs:
        item = await job_payload(svc, job)
        item["favourite"] = job.id in page.favourites
        item["boards"] = page.boards.get(job.id, [])
        data.append(item)
    return {"object": "list", "data": data, "next_cursor": page.next_cursor}


@gallery_app.command("download", cls=Command)
def gallery_download(
    ids: Annotated[list[str] | None, typer.Argument(metavar="[GEN_ID...]")] = None,
    to: Annotated[Path, typer.Option("--out", "-o", help="The zip to write")] = Path(
        "pixelpipe.zip"
    ),
    board: Annotated[str, typer.Option(metavar="BOARD_ID", help="Every image of a board")] = "",
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Download generations as one zip: their images, metadata.json and metadata.csv."""

    async def op(svc: Services | None, client: Client | None) -> int:
        chosen = list(ids or [])
        with to.open("wb") as f:
            if client is not None:
                if board:
                    chosen += await _board_ids_there(client, board)
                return await client.archive(chosen, f)
            assert svc is not None
            return await _archive_here(svc, chosen, board, f)

    size = _run(server, api_key, op)
    out().print(f"wrote {to} ({size / 1e6:.1f} MB)")


async def _board_ids_there(client: Client, board: str) -> list[str]:
    found: list[str] = []
    cursor = ""
    while True:
        page = await client.gallery(board=board, limit=100, cursor=cursor or None)
        found += [g.id for g in page.data]
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def _archive_here(svc: Services, ids: list[str], board: str, f: Any) -> int:
    from pixelpipe.usecases import gallery_archive

    if board:
        ids = ids + sorted(await svc.boards.members("", board), reverse=True)
    written = 0
    async for piece in gallery_archive.stream(svc, gallery_archive.prepare(ids)):
        f.write(piece)
        written += len(piece)
    return written


@gallery_app.command("delete", cls=Command)
def gallery_delete(
    ids: Ids,
    as_json: AsJson = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Delete generations (an image another generation shares stays); exits 2 if any was kept."""

    async def op(svc: Services | None, client: Client | None) -> dict[str, Any]:
        if client is not None:
            return (await client.delete_many(ids)).model_dump()
        from pixelpipe.usecases.gallery import delete_many

        assert svc is not None
        done = await delete_many(svc, ids)
        return {"deleted": done.deleted, "not_found": done.not_found, "refused": done.refused}

    done = _run(server, api_key, op)
    if as_json:
        print_json(done)
    else:
        out().print(f"deleted {len(done['deleted'])}")
        for job_id in done["not_found"]:
            err().print(f"not found: {job_id}")
        for job_id, why in done["refused"].items():
            err().print(f"kept {job_id}: {why}")
    if done["refused"] or done["not_found"]:
        raise typer.Exit(2)


@gallery_app.command("favourite", cls=Command)
def gallery_favourite(
    ids: Ids,
    off: Annotated[bool, typer.Option("--off", help="Unmark instead")] = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Mark generations as favourites (``--off``: unmark them)."""

    async def op(svc: Services | None, client: Client | None) -> int:
        if client is not None:
            return await client.favourite(ids, not off)
        from pixelpipe.usecases.gallery import mark_favourites

        assert svc is not None
        return await mark_favourites(svc, ids, not off)

    changed = _run(server, api_key, op)
    out().print(f"{'unmarked' if off else 'marked'} {changed}")


# ---- pixelpipe boards -------------------------------------------------------------------------


def _board_row(b: Any) -> dict[str, Any]:
    if isinstance(b, dict):
        return b
    if hasattr(b, "model_dump"):
        return dict(b.model_dump())
    from pixelpipe.notify.public import iso

    return {"id": b.id, "object": "board", "name": b.name, "images": b.images,
            "created_at": iso(b.created_at), "updated_at": iso(b.updated_at)}  # fmt: skip


@boards_app.command("list", cls=Command)
def boards_list(as_json: AsJson = False, server: Server = None, api_key: ApiKey = None) -> None:
    """Your boards, with their number of images."""

    async def op(svc: Services | None, client: Client | None) -> list[dict[str, Any]]:
        if client is not None:
            return [_board_row(b) for b in await client.boards()]
        from pixelpipe.usecases.boards import list_boards

        assert svc is not None
        return [_board_row(b) for b in await list_boards(svc)]

    rows = _run(server, api_key, op)
    if as_json:
        print_json(rows)
        return
    t = table(None, ["id", "name", "images"], ids=("id",))
    for b in rows:
        t.add_row(b["id"], b["name"], str(b["images"]))
    out().print(t)


def _board_op(
    here: Callable[[Services], Awaitable[Any]], there: Callable[[Client], Awaitable[Any]]
) -> Callable[[Services | None, Client | None], Awaitable[Any]]:
    async def op(svc: Services | None, client: Client | None) -> Any:
        if client is not None:
            return await there(client)
        assert svc is not None
        return await here(svc)

    return op


@boards_app.command("create", cls=Command)
def boards_create(
    name: Annotated[str, typer.Argument(help="1 to 80 characters")],
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Create a board (or show yours of that name)."""
    from pixelpipe.usecases import boards as uc

    async def here(svc: Services) -> Any:
        return (await uc.create_board(svc, name))[0]

    b = _board_row(_run(server, api_key, _board_op(here, lambda c: c.create_board(name))))
    out().print(f"{b['id']}  {b['name']}  ({b['images']} images)")


@boards_app.command("rename", cls=Command)
def boards_rename(
    board: Annotated[str, typer.Argument(metavar="BOARD_ID")],
    name: Annotated[str, typer.Argument(help="The new name")],
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Rename a board."""
    from pixelpipe.usecases import boards as uc

    op = _board_op(
        lambda svc: uc.rename_board(svc, board, name), lambda c: c.rename_board(board, name)
    )
    b = _board_row(_run(server, api_key, op))
    out().print(f"{b['id']}  {b['name']}")


@boards_app.command("delete", cls=Command)
def boards_delete(
    board: Annotated[str, typer.Argument(metavar="BOARD_ID")],
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Delete a board (its images stay in the gallery)."""
    from pixelpipe.usecases import boards as uc

    _run(server, api_key, _board_op(lambda svc: uc.delete_board(svc, board),
                                    lambda c: c.delete_board(board)))  # fmt: skip
    out().print(f"deleted board {board}")


@boards_app.command("add", cls=Command)
def boards_add(
    board: Annotated[str, typer.Argument(metavar="BOARD_ID")],
    ids: Ids,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Put generations on a board."""
    from pixelpipe.usecases import boards as uc

    op = _board_op(
        lambda svc: uc.add_to_board(svc, board, ids), lambda c: c.add_to_board(board, ids)
    )
    out().print(f"added {_run(server, api_key, op)}")


@boards_app.command("remove", cls=Command)
def boards_remove(
    board: Annotated[str, typer.Argument(metavar="BOARD_ID")],
    ids: Ids,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Take generations off a board (they stay in the gallery)."""
    from pixelpipe.usecases import boards as uc

    op = _board_op(
        lambda svc: uc.remove_from_board(svc, board, ids),
        lambda c: c.remove_from_board(board, ids),
    )
    out().print(f"removed {_run(server, api_key, op)}")
