"""Boards in memory (one process, nothing persisted): tests and the fully in-memory service set."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from pixelpipe.boards.base import Board, new_board_id, no_board
from pixelpipe.errors import Conflict


@dataclass
class _Stored:
    board: Board
    items: dict[str, float] = field(default_factory=dict)  # job id -> added at


class MemoryBoards:
    def __init__(self) -> None:
        self._boards: dict[str, _Stored] = {}
        self._favourites: dict[str, dict[str, float]] = {}  # owner -> job id -> marked at

    def _owned(self, owner: str, board_id: str) -> _Stored:
        stored = self._boards.get(board_id)
        if stored is None or stored.board.owner != owner:
            raise no_board(board_id)
        return stored

    def _named(self, owner: str, name: str) -> _Stored | None:
        return next(
            (s for s in self._boards.values() if s.board.owner == owner and s.board.name == name),
            None,
        )

    def _public(self, stored: _Stored) -> Board:
        return replace(stored.board, images=len(stored.items))

    async def create(self, owner: str, name: str) -> tuple[Board, bool]:
        found = self._named(owner, name)
        if found is not None:
            return self._public(found), False
        now = time.time()
        board = Board(new_board_id(), owner, name, now, now)
        self._boards[board.id] = _Stored(board)
        return board, True

    async def rename(self, owner: str, board_id: str, name: str) -> Board:
        stored = self._owned(owner, board_id)
        other = self._named(owner, name)
        if other is not None and other is not stored:
            raise Conflict(f"you already have a board named {name!r}: pick another name")
        if stored.board.name != name:
            stored.board = replace(stored.board, name=name, updated_at=time.time())
        return self._public(stored)

    async def delete(self, owner: str, board_id: str) -> bool:
        stored = self._boards.get(board_id)
        if stored is None or stored.board.owner != owner:
            return False
        del self._boards[board_id]
        return True

    async def get(self, owner: str, board_id: str) -> Board:
        return self._public(self._owned(owner, board_id))

    async def list_boards(self, owner: str) -> list[Board]:
        mine = [self._public(s) for s in self._boards.values() if s.board.owner == owner]
        return sorted(mine, key=lambda b: (b.name.casefold(), b.id))

    async def add(self, owner: str, board_id: str, job_ids: Collection[str]) -> int:
        stored = self._owned(owner, board_id)
        now = time.time()
        fresh = [j for j in dict.fromkeys(job_ids) if j not in stored.items]
        for job_id in fresh:
            stored.items[job_id] = now
        return len(fresh)

    async def remove(self, owner: str, board_id: str, job_ids: Collection[str]) -> int:
        stored = self._owned(owner, board_id)
        return sum(stored.items.pop(j, None) is not None for j in set(job_ids))

    async def members(self, owner: str, board_id: str) -> frozenset[str]:
        return frozenset(self._owned(owner, board_id).items)

    async def set_favourite(self, owner: str, job_ids: Collection[str], on: bool) -> int:
        mine = self._favourites.setdefault(owner, {})
        wanted = set(job_ids)
        if on:
            fresh = wanted - mine.keys()
            now = time.time()
            for job_id in fresh:
                mine[job_id] = now
            return len(fresh)
        return sum(mine.pop(j, None) is not None for j in wanted)

    async def favourites(self, owner: str, among: Collection[str] | None = None) -> frozenset[str]:
        mine = self._favourites.get(owner, {})
        if among is None:
            return frozenset(mine)
        return frozenset(j for j in among if j in mine)

    async def boards_of(self, owner: str, job_ids: Collection[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        wanted = set(job_ids)
        for stored in self._boards.values():
            if stored.board.owner != owner:
                continue
            for job_id in wanted.intersection(stored.items):
                found.setdefault(job_id, []).append(stored.board.id)
        return {j: sorted(ids) for j, ids in found.items()}

    async def forget_jobs(self, job_ids: Collection[str]) -> None:
        gone = set(job_ids)
        for stored in self._boards.values():
            for job_id in gone.intersection(stored.items):
                del stored.items[job_id]
        for mine in self._favourites.values():
            for job_id in gone.intersection(mine):
                del mine[job_id]
