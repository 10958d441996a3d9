"""Boards in SQL (SQLite embedded, PostgreSQL scale-out): tables in :mod:`.tables`."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pixelpipe.boards.base import Board, new_board_id, no_board
from pixelpipe.boards.tables import board_items, boards, favourites
from pixelpipe.db import Database
from pixelpipe.errors import Conflict

_CHUNK = 500  # ids per IN (...): far below SQLite's and PostgreSQL's parameter limits


def _chunks(ids: Collection[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(ids))
    for at in range(0, len(unique), _CHUNK):
        yield unique[at : at + _CHUNK]


_COUNT = (
    select(func.count())
    .where(board_items.c.board_id == boards.c.id)
    .correlate(boards)
    .scalar_subquery()
)
_SELECT = select(boards, _COUNT.label("images"))


def _board(row: Row[Any]) -> Board:
    m = row._mapping
    return Board(m["id"], m["owner"], m["name"], m["created_at"], m["updated_at"], m["images"])


def _owned(conn: Connection, owner: str, board_id: str) -> Board:
    row = conn.execute(
        _SELECT.where(and_(boards.c.id == board_id, boards.c.owner == owner))
    ).first()
    if row is None:
        raise no_board(board_id)
    return _board(row)


class SqlBoards:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, owner: str, name: str) -> tuple[Board, bool]:
        def named(conn: Connection) -> Board | None:
            row = conn.execute(
                _SELECT.where(and_(boards.c.owner == owner, boards.c.name == name))
            ).first()
            return _board(row) if row else None

        def work(conn: Connection) -> tuple[Board, bool]:
            found = named(conn)
            if found is not None:
                return found, False
            now = time.time()
            board = Board(new_board_id(), owner, name, now, now)
            conn.execute(
                insert(boards).values(
                    id=board.id, owner=owner, name=name, created_at=now, updated_at=now
                )
            )
            return board, True

        try:
            return await self.db.write(work)
        except IntegrityError:  # another process created the same name in between
            return await self.db.write(work)

    async def rename(self, owner: str, board_id: str, name: str) -> Board:
        def work(conn: Connection) -> Board:
            board = _owned(conn, owner, board_id)
            if board.name == name:
                return board
            conn.execute(
                update(boards)
                .where(boards.c.id == board_id)
                .values(name=name, updated_at=time.time())
            )
            return _owned(conn, owner, board_id)

        try:
            return await self.db.write(work)
        except IntegrityError:
            raise Conflict(f"you already have a board named {name!r}: pick another name") from None

    async def delete(self, owner: str, board_id: str) -> bool:
        def work(conn: Connection) -> bool:
            gone = conn.execute(
                delete(boards).where(and_(boards.c.id == board_id, boards.c.owner == owner))
            ).rowcount
            if gone:
                conn.execute(delete(board_items).where(board_items.c.board_id == board_id))
            return bool(gone)

        return await self.db.write(work)

    async def get(self, owner: str, board_id: str) -> Board:
        return await self.db.read_sync(lambda conn: _owned(conn, owner, board_id))

    async def list_boards(self, owner: str) -> list[Board]:
        stmt = _SELECT.where(boards.c.owner == owner)
        rows = await self.db.read_sync(lambda conn: conn.execute(stmt).all())
        return sorted((_board(r) for r in rows), key=lambda b: (b.name.casefold(), b.id))

    async def add(self, owner: str, board_id: str, job_ids: Collection[str]) -> int:
        def work(conn: Connection) -> int:
            _owned(conn, owner, board_id)
            added, now = 0, time.time()
            for chunk in _chunks(job_ids):
                on_board = and_(board_items.c.board_id == board_id, board_items.c.job_id.in_(chunk))
                have = set(conn.execute(select(board_items.c.job_id).where(on_board)).scalars())
                rows = [
                    {"board_id": board_id, "job_id": j, "added_at": now}
                    for j in chunk
                    if j not in have
                ]
                if rows:
                    conn.execute(insert(board_items), rows)
                added += len(rows)
            return added

        for _ in range(2):  # a concurrent add of the same image: look again
            try:
                return await self.db.write(work)
            except IntegrityError:
                continue
        return await self.db.write(work)

    async def remove(self, owner: str, board_id: str, job_ids: Collection[str]) -> int:
        def work(conn: Connection) -> int:
            _owned(conn, owner, board_id)
            return sum(
                conn.execute(
                    delete(board_items).where(
                        and_(board_items.c.board_id == board_id, board_items.c.job_id.in_(chunk))
                    )
                ).rowcount
                for chunk in _chunks(job_ids)
            )

        return await self.db.write(work)

    async def members(self, owner: str, board_id: str) -> frozenset[str]:
        def work(conn: Connection) -> frozenset[str]:
            _owned(conn, owner, board_id)
            stmt = select(board_items.c.job_id).where(board_items.c.board_id == board_id)
            return frozenset(conn.execute(stmt).scalars())

        return await self.db.read_sync(work)

    async def set_favourite(self, owner: str, job_ids: Collection[str], on: bool) -> int:
        def mark(conn: Connection) -> int:
            changed, now = 0, time.time()
            for chunk in _chunks(job_ids):
                have = set(
                    conn.execute(
                        select(favourites.c.job_id).where(
                            and_(favourites.c.owner == owner, favourites.c.job_id.in_(chunk))
                        )
                    ).scalars()
                )
                rows = [
                    {"owner": owner, "job_id": j, "created_at": now} for j in chunk if j not in have
                ]
                if rows:
                    conn.execute(insert(favourites), rows)
                changed += len(rows)
            return changed

        def unmark(conn: Connection) -> int:
            return sum(
                conn.execute(
                    delete(favourites).where(
                        and_(favourites.c.owner == owner, favourites.c.job_id.in_(chunk))
                    )
                ).rowcount
                for chunk in _chunks(job_ids)
            )

        if not on:
            return await self.db.write(unmark)
        for _ in range(2):  # a concurrent mark of the same image: look again
            try:
                return await self.db.write(mark)
            except IntegrityError:
                continue
        return await self.db.write(mark)

    async def favourites(self, owner: str, among: Collection[str] | None = None) -> frozenset[str]:
        def work(conn: Connection) -> frozenset[str]:
            base = select(favourites.c.job_id).where(favourites.c.owner == owner)
            if among is None:
                return frozenset(conn.execute(base).scalars())
            found: set[str] = set()
            for chunk in _chunks(among):
                found.update(conn.execute(base.where(favourites.c.job_id.in_(chunk))).scalars())
            return frozenset(found)

        return await self.db.read_sync(work)

    async def boards_of(self, owner: str, job_ids: Collection[str]) -> dict[str, list[str]]:
        def work(conn: Connection) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for chunk in _chunks(job_ids):
                stmt = (
                    select(board_items.c.job_id, board_items.c.board_id)
                    .join(boards, boards.c.id == board_items.c.board_id)
                    .where(and_(boards.c.owner == owner, board_items.c.job_id.in_(chunk)))
                )
                for job_id, board_id in conn.execute(stmt).all():
                    found.setdefault(job_id, []).append(board_id)
            return {j: sorted(ids) for j, ids in found.items()}

        return await self.db.read_sync(work)

    async def forget_jobs(self, job_ids: Collection[str]) -> None:
        def work(conn: Connection) -> None:
            for chunk in _chunks(job_ids):
                conn.execute(delete(board_items).where(board_items.c.job_id.in_(chunk)))
                conn.execute(delete(favourites).where(favourites.c.job_id.in_(chunk)))

        await self.db.write(work)
