"""Migration 0013 makes exactly the boards tables the code describes, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from pixelpipe.boards.tables import board_items, boards, favourites
from pixelpipe.migrations.runner import upgrade


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
def test_migrated_boards_tables_match_their_definitions(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        if engine == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    upgrade(url)
    sync = create_engine(url.replace("+aiosqlite", ""))
    insp = inspect(sync)
    for table in (boards, board_items, favourites):
        assert {c["name"] for c in insp.get_columns(table.name)} == set(table.columns.keys())
    assert {tuple(u["column_names"]) for u in insp.get_unique_constraints("boards")} == {
        ("owner", "name")
    }
    sync.dispose()
