"""Boards of the caller (its API key; one key never sees another's): create, rename, delete,
list, and put generations on them or take them off."""

from __future__ import annotations

from collections.abc import Sequence

from pixelpipe.boards import Board, board_name, owner_of
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.gallery import existing, selection


async def create_board(
    svc: Services, name: str, *, caller: Caller = Caller()
) -> tuple[Board, bool]:
    """A board named ``name``; the caller's board of that name when it has one (created False)."""
    return await svc.boards.create(owner_of(caller.key_id), board_name(name))


async def rename_board(
    svc: Services, board_id: str, name: str, *, caller: Caller = Caller()
) -> Board:
    return await svc.boards.rename(owner_of(caller.key_id), board_id, board_name(name))


async def delete_board(svc: Services, board_id: str, *, caller: Caller = Caller()) -> bool:
    """Delete a board (its images stay in the gallery); False when it was already gone."""
    return await svc.boards.delete(owner_of(caller.key_id), board_id)


async def list_boards(svc: Services, *, caller: Caller = Caller()) -> list[Board]:
    return await svc.boards.list_boards(owner_of(caller.key_id))


async def get_board(svc: Services, board_id: str, *, caller: Caller = Caller()) -> Board:
    return await svc.boards.get(owner_of(caller.key_id), board_id)


async def add_to_board(
    svc: Services, board_id: str, ids: Sequence[str], *, caller: Caller = Caller()
) -> int:
    """Put generations on the caller's board; how many were not on it yet."""
    owner = owner_of(caller.key_id)
    await svc.boards.get(owner, board_id)  # NotFound before the ids are read
    return await svc.boards.add(owner, board_id, await existing(svc, ids))


async def remove_from_board(
    svc: Services, board_id: str, ids: Sequence[str], *, caller: Caller = Caller()
) -> int:
    """Take generations off the caller's board; how many were on it."""
    return await svc.boards.remove(owner_of(caller.key_id), board_id, selection(ids))
