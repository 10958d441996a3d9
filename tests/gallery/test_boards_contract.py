"""The Boards contract (favourites and boards per owner), run on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from pixelpipe.boards import Boards, board_name
from pixelpipe.errors import Conflict, InvalidRequest, NotFound

A, B = "key_a", "key_b"
J = [f"gen_{i:026d}" for i in range(6)]


async def test_implements_the_protocol(boards: Boards) -> None:
    assert isinstance(boards, Boards)


async def test_create_is_idempotent_by_name_and_lists_by_name(boards: Boards) -> None:
    trip, made = await boards.create(A, "Trip")
    again, made_again = await boards.create(A, "Trip")
    assert made and not made_again and again.id == trip.id
    await boards.create(A, "alpha")
    assert [b.name for b in await boards.list_boards(A)] == ["alpha", "Trip"]
    assert trip.id.startswith("brd_") and trip.owner == A


async def test_one_owner_never_sees_anothers_boards(boards: Boards) -> None:
    mine, _ = await boards.create(A, "Mine")
    theirs, made = await boards.create(B, "Mine")  # the same name is another board for B
    assert made and theirs.id != mine.id
    assert [b.id for b in await boards.list_boards(A)] == [mine.id]
    for call in (
        boards.get(B, mine.id),
        boards.add(B, mine.id, J[:1]),
        boards.remove(B, mine.id, J[:1]),
        boards.members(B, mine.id),
        boards.rename(B, mine.id, "Stolen"),
    ):
        with pytest.raises(NotFound):
            await call
    assert await boards.delete(B, mine.id) is False
    assert (await boards.get(A, mine.id)).name == "Mine"


async def test_add_and_remove_count_only_changes(boards: Boards) -> None:
    board, _ = await boards.create(A, "Picks")
    assert await boards.add(A, board.id, J[:3]) == 3
    assert await boards.add(A, board.id, [J[2], J[3], J[3]]) == 1  # repeats change nothing
    assert await boards.members(A, board.id) == frozenset(J[:4])
    assert (await boards.get(A, board.id)).images == 4
    assert await boards.remove(A, board.id, [J[0], J[5]]) == 1
    assert await boards.remove(A, board.id, [J[0]]) == 0
    assert [b.images for b in await boards.list_boards(A)] == [3]
    assert await boards.boards_of(A, J) == {J[1]: [board.id], J[2]: [board.id], J[3]: [board.id]}
    assert await boards.boards_of(B, J) == {}


async def test_many_images_at_once(boards: Boards) -> None:
    board, _ = await boards.create(A, "Big")
    many = [f"gen_{i:026d}" for i in range(1_200)]  # more than one IN (...) chunk
    assert await boards.add(A, board.id, many) == 1_200
    assert len(await boards.members(A, board.id)) == 1_200
    assert await boards.set_favourite(A, many, True) == 1_200
    assert len(await boards.favourites(A, many[:700])) == 700
    assert await boards.remove(A, board.id, many[:600]) == 600


async def test_rename_keeps_members_and_refuses_a_taken_name(boards: Boards) -> None:
    one, _ = await boards.create(A, "One")
    await boards.create(A, "Two")
    await boards.add(A, one.id, J[:2])
    renamed = await boards.rename(A, one.id, "Uno")
    assert renamed.name == "Uno" and renamed.images == 2 and renamed.id == one.id
    assert (await boards.rename(A, one.id, "Uno")).name == "Uno"  # to its own name: no change
    with pytest.raises(Conflict):
        await boards.rename(A, one.id, "Two")
    with pytest.raises(NotFound):
        await boards.rename(A, "brd_nope", "Three")


async def test_delete_is_idempotent_and_takes_its_items(boards: Boards) -> None:
    board, _ = await boards.create(A, "Gone")
    await boards.add(A, board.id, J[:2])
    assert await boards.delete(A, board.id) is True
    assert await boards.delete(A, board.id) is False
    assert await boards.list_boards(A) == []
    assert await boards.boards_of(A, J) == {}
    again, made = await boards.create(A, "Gone")
    assert made and again.images == 0


async def test_favourites_per_owner(boards: Boards) -> None:
    assert await boards.set_favourite(A, J[:2], True) == 2
    assert await boards.set_favourite(A, J[:3], True) == 1
    assert await boards.favourites(A) == frozenset(J[:3])
    assert await boards.favourites(A, [J[0], J[4]]) == frozenset({J[0]})
    assert await boards.favourites(B) == frozenset()
    assert await boards.set_favourite(A, [J[0], J[5]], False) == 1
    assert await boards.set_favourite(A, [J[0]], False) == 0
    assert await boards.favourites(A) == frozenset(J[1:3])


async def test_forgotten_jobs_leave_every_board_and_favourite(boards: Boards) -> None:
    a, _ = await boards.create(A, "A")
    b, _ = await boards.create(B, "B")
    await boards.add(A, a.id, J[:3])
    await boards.add(B, b.id, J[:3])
    await boards.set_favourite(A, J[:3], True)
    await boards.set_favourite(B, J[:1], True)
    await boards.forget_jobs([J[0], J[1]])
    assert await boards.members(A, a.id) == frozenset({J[2]})
    assert await boards.members(B, b.id) == frozenset({J[2]})
    assert await boards.favourites(A) == frozenset({J[2]})
    assert await boards.favourites(B) == frozenset()


async def test_concurrent_adds_of_the_same_images_count_each_once(boards: Boards) -> None:
    board, _ = await boards.create(A, "Race")
    added = await asyncio.gather(*(boards.add(A, board.id, J) for _ in range(4)))
    assert sum(added) == len(J)
    assert (await boards.get(A, board.id)).images == len(J)


def test_board_names_are_trimmed_and_checked() -> None:
    assert board_name("  Summer   trip ") == "Summer trip"
    for bad, says in (("   ", "needs a name"), ("x" * 81, "at most 80"), ("a\u200bb", "invisible")):
        with pytest.raises(InvalidRequest, match=says):
            board_name(bad)
