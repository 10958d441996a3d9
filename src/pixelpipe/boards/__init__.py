"""Gallery curation: favourites and boards, per owner (an API key; ``""`` with auth off).

The boundary is :class:`pixelpipe.boards.base.Boards`; :class:`MemoryBoards` and
:class:`SqlBoards` (SQLite, PostgreSQL) run one contract suite
(``tests/gallery/test_boards_contract.py``).
"""

from pixelpipe.boards.base import Board, Boards, board_name, owner_of
from pixelpipe.boards.memory import MemoryBoards

__all__ = ["Board", "Boards", "MemoryBoards", "board_name", "owner_of"]
