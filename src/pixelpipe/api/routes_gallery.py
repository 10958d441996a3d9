"""The gallery: the filtered, sorted feed with favourites and boards (``GET /v1/gallery``),
favourites, bulk download as one streamed zip and bulk delete (``docs/gallery.md``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from pixelpipe.api.deps import CallerDep, ServicesDep
from pixelpipe.api.schemas import GenerationPublic
from pixelpipe.api.urls import request_base
from pixelpipe.notify.public import job_payload
from pixelpipe.usecases import gallery_archive
from pixelpipe.usecases.gallery import MAX_SELECTION, GalleryQuery, delete_many, gallery_page
from pixelpipe.usecases.gallery import mark_favourites as mark

router = APIRouter(tags=["gallery"])

Id = Annotated[str, Field(max_length=40)]


def _problem(description: str) -> dict[str, Any]:
    return {"description": f"{description} (problem+json)"}


class GalleryItem(GenerationPublic):
    favourite: bool = Field(False, description="You marked it a favourite (your API key's)")
    boards: list[str] = Field(default_factory=list, description="Your boards it is on")


class GalleryList(BaseModel):
    object: str = "list"
    data: list[GalleryItem]
    next_cursor: str | None = None


class Selection(BaseModel):
    ids: list[Id] = Field(description=f"generation ids, 1 to {MAX_SELECTION}")


class FavouriteChange(Selection):
    favourite: bool = Field(True, description="true marks them, false unmarks them")


class Changed(BaseModel):
    changed: int = Field(description="how many changed (repeats change nothing)")


class BulkDeletionPublic(BaseModel):
    object: str = "bulk_deletion"
    deleted: list[str] = Field(description="gone now, also those deleted by an earlier call")
    not_found: list[str] = Field(description="ids that never were generations")
    refused: dict[str, str] = Field(description="id → why it was kept (another key's, running)")


class FavouriteList(BaseModel):
    object: str = "list"
    data: list[str] = Field(description="your favourite generations' ids")


@router.get("/v1/gallery", response_model=GalleryList, responses={422: _problem("A bad filter")})
async def gallery(
    request: Request,
    svc: ServicesDep,
    caller: CallerDep,
    model: Annotated[str, Query(max_length=64)] = "",
    provider: Annotated[str, Query(max_length=64)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    since: Annotated[
        str, Query(max_length=40, description="YYYY-MM-DD or ISO date-time, inclusive")
    ] = "",
    until: Annotated[
        str, Query(max_length=40, description="YYYY-MM-DD (that whole day) or ISO date-time")
    ] = "",
    board: Annotated[str, Query(max_length=40, description="one of your boards' ids")] = "",
    favourite: Annotated[bool, Query(description="only your favourites")] = False,
    cost_min: Annotated[str, Query(max_length=20, description="USD, e.g. 0.01")] = "",
    cost_max: Annotated[str, Query(max_length=20, description="USD, e.g. 0.05")] = "",
    sort: Annotated[
        str, Query(max_length=16, description="newest | oldest | cost_desc | cost_asc")
    ] = "newest",
    q: Annotated[str, Query(max_length=200, description="search in prompts")] = "",
    group: Annotated[str, Query(max_length=64)] = "",
    cursor: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
) -> GalleryList:
    """The gallery: every generation matching the filters, in ``sort`` order, each with your
    favourite mark and boards. Pass ``next_cursor`` back as ``cursor`` (with the same filters)
    for the next page. A bad filter answers 422 saying what to send."""
    query = GalleryQuery(
        model, provider, status, since, until, board, favourite, cost_min, cost_max, sort, q,
        group, cursor, limit,
    )  # fmt: skip
    page = await gallery_page(svc, query, caller=caller)
    base = request_base(svc, request)
    data = []
    for job in page.jobs:
        item = await job_payload(svc, job, base)
        item["favourite"] = job.id in page.favourites
        item["boards"] = page.boards.get(job.id, [])
        data.append(GalleryItem.model_validate(item))
    return GalleryList(data=data, next_cursor=page.next_cursor)


@router.get("/v1/favourites", response_model=FavouriteList)
async def favourites(svc: ServicesDep, caller: CallerDep) -> FavouriteList:
    """Your favourites' ids (those of your API key). ``GET /v1/gallery?favourite=true`` lists
    them as generations."""
    owner = caller.key_id or ""
    return FavouriteList(data=sorted(await svc.boards.favourites(owner), reverse=True))


@router.post(
    "/v1/favourites",
    response_model=Changed,
    responses={404: _problem("No generation with one of these ids"), 422: _problem("Bad ids")},
)
async def change_favourites(body: FavouriteChange, svc: ServicesDep, caller: CallerDep) -> Changed:
    """Mark (``favourite: true``) or unmark generations as your favourites. Idempotent."""
    return Changed(changed=await mark(svc, body.ids, body.favourite, caller=caller))


@router.put(
    "/v1/favourites/{job_id}",
    status_code=204,
    response_class=Response,
    responses={404: _problem("No generation with this id"), 422: _problem("Not a generation id")},
)
async def add_favourite(job_id: str, svc: ServicesDep, caller: CallerDep) -> Response:
    """Mark one generation a favourite (again: no change)."""
    await mark(svc, [job_id], True, caller=caller)
    return Response(status_code=204)


@router.delete(
    "/v1/favourites/{job_id}",
    status_code=204,
    response_class=Response,
    responses={422: _problem("Not a generation id")},
)
async def remove_favourite(job_id: str, svc: ServicesDep, caller: CallerDep) -> Response:
    """Unmark one favourite (not one: no change)."""
    await mark(svc, [job_id], False, caller=caller)
    return Response(status_code=204)


@router.post(
    "/v1/images/archive",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The zip, streamed"},
        422: _problem("No ids, too many, or not generation ids"),
    },
)
async def archive(body: Selection, svc: ServicesDep) -> StreamingResponse:
    """The selected generations as one zip, streamed while it is written: each image under
    ``images/``, plus ``metadata.json`` and ``metadata.csv`` (prompt, model, provider, seed,
    cost, lineage: ``retry_of``, ``made_from``; created). Ids that are no generation are listed
    under ``missing`` in ``metadata.json``."""
    chosen = gallery_archive.prepare(body.ids)
    name = quote(chosen.filename)
    return StreamingResponse(
        gallery_archive.stream(svc, chosen),
        media_type="application/zip",
        headers={
            "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}",
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/v1/generations/delete",
    response_model=BulkDeletionPublic,
    responses={422: _problem("No ids, too many, or not generation ids")},
)
async def bulk_delete(body: Selection, svc: ServicesDep, caller: CallerDep) -> BulkDeletionPublic:
    """Delete the selected finished generations, each as ``DELETE /v1/generations/{id}`` does:
    an image shared with another generation (a cache hit) stays while any still uses it; ledger
    entries stay. Another key's generation, or one still running, is kept and listed under
    ``refused``. Idempotent: a repeat reports them deleted."""
    done = await delete_many(svc, body.ids, caller=caller)
    return BulkDeletionPublic(deleted=done.deleted, not_found=done.not_found, refused=done.refused)
