"""``/v1/boards``: your boards (those of your API key): create, rename, delete, list, and put
generations on them or take them off. Filter the gallery by one: ``GET /v1/gallery?board=``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from pixelpipe.api.deps import CallerDep, ServicesDep
from pixelpipe.api.routes_gallery import Changed, Selection
from pixelpipe.boards import Board
from pixelpipe.notify.public import iso
from pixelpipe.usecases import boards as uc

router = APIRouter(prefix="/v1/boards", tags=["boards"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such board for this API key (problem+json)"}
}


class BoardPublic(BaseModel):
    id: str
    object: str = "board"
    name: str
    images: int = Field(description="generations on it")
    created_at: str
    updated_at: str


class BoardList(BaseModel):
    object: str = "list"
    data: list[BoardPublic]


class BoardName(BaseModel):
    name: str = Field(max_length=200, description="1 to 80 characters")


def _public(board: Board) -> BoardPublic:
    return BoardPublic(
        id=board.id,
        name=board.name,
        images=board.images,
        created_at=iso(board.created_at) or "",
        updated_at=iso(board.updated_at) or "",
    )


@router.get("", response_model=BoardList)
async def list_boards(svc: ServicesDep, caller: CallerDep) -> BoardList:
    """Your boards, by name, each with its number of images."""
    return BoardList(data=[_public(b) for b in await uc.list_boards(svc, caller=caller)])


@router.post(
    "",
    status_code=201,
    response_model=BoardPublic,
    responses={200: {"description": "You have a board of that name: it", "model": BoardPublic}},
)
async def create_board(
    body: BoardName, svc: ServicesDep, caller: CallerDep, response: Response
) -> BoardPublic:
    """Create a board (201). Idempotent by name: a name you already have answers that board
    (200)."""
    board, created = await uc.create_board(svc, body.name, caller=caller)
    response.status_code = 201 if created else 200
    return _public(board)


@router.get("/{board_id}", response_model=BoardPublic, responses=NOT_FOUND)
async def get_board(board_id: str, svc: ServicesDep, caller: CallerDep) -> BoardPublic:
    return _public(await uc.get_board(svc, board_id, caller=caller))


@router.patch(
    "/{board_id}",
    response_model=BoardPublic,
    responses={**NOT_FOUND, 409: {"description": "You have a board of that name (problem+json)"}},
)
async def rename_board(
    board_id: str, body: BoardName, svc: ServicesDep, caller: CallerDep
) -> BoardPublic:
    """Rename a board (its images stay on it)."""
    return _public(await uc.rename_board(svc, board_id, body.name, caller=caller))


@router.delete("/{board_id}", status_code=204, response_class=Response)
async def delete_board(board_id: str, svc: ServicesDep, caller: CallerDep) -> Response:
    """Delete a board; its images stay in the gallery. Idempotent (204 again)."""
    await uc.delete_board(svc, board_id, caller=caller)
    return Response(status_code=204)


@router.post("/{board_id}/images", response_model=Changed, responses=NOT_FOUND)
async def add_images(
    board_id: str, body: Selection, svc: ServicesDep, caller: CallerDep
) -> Changed:
    """Put generations on the board; ``changed``: how many were not on it yet."""
    return Changed(changed=await uc.add_to_board(svc, board_id, body.ids, caller=caller))


@router.post("/{board_id}/images/remove", response_model=Changed, responses=NOT_FOUND)
async def remove_images(
    board_id: str, body: Selection, svc: ServicesDep, caller: CallerDep
) -> Changed:
    """Take generations off the board; ``changed``: how many were on it."""
    return Changed(changed=await uc.remove_from_board(svc, board_id, body.ids, caller=caller))
