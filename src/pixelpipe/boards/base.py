"""The boards boundary: an owner's favourites and named boards of generations.

An owner is an API key id, or ``""`` for callers with auth off. One owner never sees, changes or
learns of another's boards: a board id of another owner reads as not found. Boards hold job ids
only; the images stay where they are (deleting a board deletes no image). Every write is
idempotent: adding an image twice, favouriting twice, deleting a board twice change nothing more.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pixelpipe.errors import InvalidRequest, NotFound

MAX_NAME = 80


@dataclass(frozen=True, slots=True)
class Board:
    id: str
    owner: str
    name: str
    created_at: float
    updated_at: float
    images: int = 0  # generations on it


def owner_of(key_id: str | None) -> str:
    """The owner a caller's boards belong to: its key id, or ``""`` with auth off."""
    return key_id or ""


def new_board_id() -> str:
    return "brd_" + secrets.token_hex(12)


def board_name(name: str) -> str:
    """``name`` trimmed, or InvalidRequest saying what is wrong with it."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidRequest("a board needs a name: send 1 to 80 characters, not only spaces")
    if len(cleaned) > MAX_NAME:
        raise InvalidRequest(
            f"a board name has at most {MAX_NAME} characters ({len(cleaned)} sent)"
        )
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in cleaned):
        raise InvalidRequest("a board name cannot contain control or invisible characters")
    return cleaned


def no_board(board_id: str) -> NotFound:
    return NotFound(f"no board with id {board_id!r} for this API key (list yours: GET /v1/boards)")


@runtime_checkable
class Boards(Protocol):
    """Favourites and boards of each owner."""

    async def create(self, owner: str, name: str) -> tuple[Board, bool]:
        """A board named ``name`` (already cleaned by :func:`board_name`). A name the owner
        already has answers that board and False: creating is idempotent by name."""
        ...

    async def rename(self, owner: str, board_id: str, name: str) -> Board:
        """Rename; NotFound when the owner has no such board, Conflict when the name is taken
        by another of its boards (renaming to its own name changes nothing)."""
        ...

    async def delete(self, owner: str, board_id: str) -> bool:
        """Delete a board (not its images); False when it was not there (already deleted)."""
        ...

    async def get(self, owner: str, board_id: str) -> Board:
        """The owner's board, or NotFound."""
        ...

    async def list_boards(self, owner: str) -> list[Board]:
        """The owner's boards by name, each with its number of images."""
        ...

    async def add(self, owner: str, board_id: str, job_ids: Collection[str]) -> int:
        """Put generations on a board; how many were not on it yet. NotFound: no such board."""
        ...

    async def remove(self, owner: str, board_id: str, job_ids: Collection[str]) -> int:
        """Take generations off a board; how many were on it. NotFound: no such board."""
        ...

    async def members(self, owner: str, board_id: str) -> frozenset[str]:
        """The job ids on the owner's board (NotFound: no such board)."""
        ...

    async def set_favourite(self, owner: str, job_ids: Collection[str], on: bool) -> int:
        """Mark (``on``) or unmark favourites; how many changed."""
        ...

    async def favourites(self, owner: str, among: Collection[str] | None = None) -> frozenset[str]:
        """The owner's favourite job ids (only those in ``among`` when given)."""
        ...

    async def boards_of(self, owner: str, job_ids: Collection[str]) -> dict[str, list[str]]:
        """For each of ``job_ids`` on any of the owner's boards: those board ids."""
        ...

    async def forget_jobs(self, job_ids: Collection[str]) -> None:
        """Deleted generations leave every owner's boards and favourites."""
        ...
