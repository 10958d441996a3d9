"""Hot statements on SQLite: compiled once by SQLAlchemy, run on the driver's cursor.

Through SQLAlchemy's execution layer a trivial statement costs ~25 µs (an INSERT) to ~60 µs (an
``UPDATE … RETURNING`` with its row mapping) of CPU on top of SQLite's own work, and a full
generation runs about twenty of them. Here SQLAlchemy still builds and compiles each statement
(once per statement and parameter set) and the columns' own bind processors (JSON, …) still
convert the values, so rows are stored exactly as ``conn.execute`` would store them; only the
per-call machinery is skipped. Other databases (PostgreSQL, whose driver adapts some types
itself) go through ``conn.execute`` unchanged.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Connection, Table, Update, bindparam, insert

Values = Callable[[Mapping[str, Any]], tuple[Any, ...]]
Processors = list[tuple[str, Callable[[Any], Any]]]


class _Insert:
    def __init__(self, conn: Connection, table: Table, columns: tuple[str, ...]) -> None:
        stmt = insert(table).values({name: bindparam(name) for name in columns})
        compiled = stmt.compile(dialect=conn.dialect)
        self.sql = str(compiled)
        self.values = _getter(tuple(compiled.positiontup or ()))
        self.processors = _processors(conn, table, columns)

    def params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        if self.processors:
            row = dict(row)
            for name, process in self.processors:
                row[name] = process(row[name])
        return self.values(row)


class _Returning:
    """An ``UPDATE … RETURNING`` whose SET columns are the non-``w_`` parameter names."""

    def __init__(self, conn: Connection, stmt: Update, table: Table, keys: tuple[str, ...]) -> None:
        columns = tuple(k for k in keys if not k.startswith("w_"))
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
        self.sql = str(compiled)
        self.values = _getter(tuple(compiled.positiontup or ()))
        self.processors = _processors(conn, table, columns)
        self.json = frozenset(c.name for c in table.columns if isinstance(c.type, JSON))
        self.booleans = frozenset(c.name for c in table.columns if isinstance(c.type, Boolean))


# keyed by dialect too: one process may talk to SQLite and PostgreSQL (tests, migrations)
_INSERTS: dict[tuple[Table, tuple[str, ...], str], _Insert | None] = {}
_RETURNING: dict[tuple[Update, tuple[str, ...]], _Returning] = {}


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` (all with the same columns) with one ``executemany``."""
    columns = tuple(rows[0])
    plan = _insert_plan(conn, table, columns)
    if plan is None:
        conn.execute(insert(table), rows)
        return
    _driver(conn).executemany(plan.sql, [plan.params(row) for row in rows])


def insert_row(conn: Connection, table: Table, row: dict[str, Any]) -> None:
    plan = _insert_plan(conn, table, tuple(row))
    if plan is None:
        conn.execute(insert(table), row)
        return
    _driver(conn).execute(plan.sql, plan.params(row))


def update_returning(
    conn: Connection, stmt: Update, table: Table, params: dict[str, Any]
) -> Mapping[str, Any] | None:
    """Run ``stmt`` (``UPDATE table … RETURNING table``) and return its one row, or None."""
    if conn.dialect.name != "sqlite":
        found = conn.execute(stmt, params).first()
        return None if found is None else dict(found._mapping)
    keys = tuple(sorted(params))
    plan = _RETURNING.get((stmt, keys))
    if plan is None:
        plan = _RETURNING[(stmt, keys)] = _Returning(conn, stmt, table, keys)
    values = dict(params)
    for name, process in plan.processors:
        values[name] = process(values[name])
    cursor = _driver(conn).execute(plan.sql, plan.values(values))
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cursor.description]
    cursor.close()
    out = dict(zip(names, row, strict=True))
    for name in plan.json:
        if out.get(name) is not None:
            out[name] = orjson.loads(out[name])
    for name in plan.booleans:
        if out.get(name) is not None:
            out[name] = bool(out[name])
    return out


def _insert_plan(conn: Connection, table: Table, columns: tuple[str, ...]) -> _Insert | None:
    """The compiled INSERT, or None for SQLAlchemy's own way (not SQLite, or Python-side
    defaults to fill in for missing columns)."""
    key = (table, columns, conn.dialect.name)
    if key not in _INSERTS:
        missing = [c for c in table.columns if c.name not in columns]
        usable = conn.dialect.name == "sqlite" and all(c.default is None for c in missing)
        _INSERTS[key] = _Insert(conn, table, columns) if usable else None
    return _INSERTS[key]


def _driver(conn: Connection) -> Any:
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


def _getter(order: tuple[str, ...]) -> Values:
    if len(order) == 1:
        return lambda row: (row[order[0]],)
    return operator.itemgetter(*order)


def _processors(conn: Connection, table: Table, columns: tuple[str, ...]) -> Processors:
    found: Processors = []
    for name in columns:
        process = table.c[name].type.bind_processor(conn.dialect)
        if process is not None:
            found.append((name, process))
    return found
