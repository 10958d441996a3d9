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

import functools
import itertools
import operator
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Boolean, Connection, Executable, Table, insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Values = Callable[[Mapping[str, Any]], tuple[Any, ...]]
Processors = list[tuple[str, Callable[[Any], Any]]]


class _Plan:
    """A statement compiled for one set of parameter names: the columns it writes are the
    non-``w_`` names (``w_*`` name WHERE binds), values bound through their columns' types."""

    def __init__(self, conn: Connection, stmt: Executable, table: Table, keys: tuple[str, ...]):
        columns = tuple(k for k in keys if not k.startswith("w_"))
        clause = cast(ClauseElement, stmt)  # every Executable here is a Core statement
        compiled = cast(
            SQLCompiler, clause.compile(dialect=conn.dialect, column_keys=list(columns))
        )
        self.sql = str(compiled)
        self.values = _getter(tuple(compiled.positiontup or ()))
        self.processors = _processors(conn, table, columns)
        self.json = frozenset(c.name for c in table.columns if isinstance(c.type, JSON))
        self.booleans = frozenset(c.name for c in table.columns if isinstance(c.type, Boolean))

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The driver's positional parameters, each converted by its column's type."""
        if self.processors:
            values = dict(values)
            for name, process in self.processors:
                values[name] = process(values[name])
        return self.values(values)

    def decode(self, names: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
        out = dict(zip(names, row, strict=True))
        for name in self.json:
            if out.get(name) is not None:
                out[name] = orjson.loads(out[name])
        for name in self.booleans:
            if out.get(name) is not None:
                out[name] = bool(out[name])
        return out


_INSERTS: dict[tuple[Table, tuple[str, ...], str], _Plan | None] = {}
_PLANS: dict[tuple[Executable, tuple[str, ...]], _Plan] = {}


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` (all with the same columns) with one ``executemany``."""
    columns = tuple(rows[0])
    plan = _insert_plan(conn, table, columns)
    if plan is None:
        conn.execute(insert(table), rows)
        return
    driver_connection(conn).executemany(plan.sql, [plan.params(row) for row in rows])


def insert_row(conn: Connection, table: Table, row: dict[str, Any]) -> None:
    plan = _insert_plan(conn, table, tuple(row))
    if plan is None:
        conn.execute(insert(table), row)
        return
    driver_connection(conn).execute(plan.sql, plan.params(row))


_DEFERRED = "pixelpipe.deferred_rows"  # conn.info key: [(plan, driver params)] while deferring
_MAX_ROWS_PER_INSERT = 128  # 128 rows of a few columns: far below SQLite's bound-variable limit


@contextmanager
def rows_deferred(conn: Connection) -> Iterator[None]:
    """Within it, :func:`insert_later` queues its rows (SQLite); at the end, unless the body
    raised, they are written in the order given with multi-row INSERTs — one statement where
    there were one per row. A group commit's status events were a quarter of its statements,
    and each statement is a driver call on the event loop's thread (or, in a worker thread, a
    GIL round trip: ADR 0014). A body that reads or deletes what it queued calls
    :func:`write_deferred` first."""
    if conn.dialect.name != "sqlite" or _DEFERRED in conn.info:
        yield  # not SQLite (rows go at once), or already deferring (the outer scope writes)
        return
    conn.info[_DEFERRED] = []
    try:
        yield
        write_deferred(conn)
    finally:
        del conn.info[_DEFERRED]


def insert_later(conn: Connection, table: Table, row: dict[str, Any]) -> None:
    """INSERT ``row`` now, or at the end of the enclosing :func:`rows_deferred`. Its values are
    converted now: a caller may reuse its dicts."""
    pending: list[tuple[_Plan, tuple[Any, ...]]] | None = conn.info.get(_DEFERRED)
    plan = _insert_plan(conn, table, tuple(row)) if pending is not None else None
    if pending is None or plan is None:
        insert_row(conn, table, row)
        return
    pending.append((plan, plan.params(row)))


def write_deferred(conn: Connection) -> None:
    """Write the rows queued so far: each run of rows with the same statement as multi-row
    INSERTs of power-of-two sizes (few distinct statements for the driver's cache to hold)."""
    pending: list[tuple[_Plan, tuple[Any, ...]]] | None = conn.info.get(_DEFERRED)
    if not pending:
        return
    conn.info[_DEFERRED] = []
    raw = driver_connection(conn)
    for plan, same in itertools.groupby(pending, key=operator.itemgetter(0)):
        run = [params for _, params in same]
        while run:
            n = min(_MAX_ROWS_PER_INSERT, 1 << (len(run).bit_length() - 1))
            chunk, run = run[:n], run[n:]
            raw.execute(_multi_row_sql(plan.sql, n), [v for params in chunk for v in params])


@functools.cache
def _multi_row_sql(sql: str, rows: int) -> str:
    """``INSERT … VALUES (?, ?)`` for ``rows`` rows."""
    head, _, values = sql.rpartition(" VALUES ")
    return f"{head} VALUES {', '.join([values] * rows)}"


def first_row(
    conn: Connection, stmt: Executable, table: Table, params: dict[str, Any]
) -> dict[str, Any] | None:
    """The first row ``stmt`` (a SELECT, or DML with RETURNING, over ``table``'s columns)
    gives, as a dict with JSON and booleans decoded, or None."""
    if conn.dialect.name != "sqlite":
        found = conn.execute(stmt, params).first()
        return None if found is None else dict(found._mapping)
    plan, cursor = _run(conn, stmt, table, params)
    try:
        row = cursor.fetchone()
        return None if row is None else plan.decode([d[0] for d in cursor.description], row)
    finally:
        cursor.close()  # finished: nothing left pending in the transaction


def all_rows(
    conn: Connection, stmt: Executable, table: Table, params: dict[str, Any]
) -> list[dict[str, Any]]:
    if conn.dialect.name != "sqlite":
        return [dict(r._mapping) for r in conn.execute(stmt, params)]
    plan, cursor = _run(conn, stmt, table, params)
    try:
        names = [d[0] for d in cursor.description]
        return [plan.decode(names, row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def execute(conn: Connection, stmt: Executable, table: Table, params: dict[str, Any]) -> int:
    """Run DML without results; the number of rows it touched."""
    if conn.dialect.name != "sqlite":
        return int(conn.execute(stmt, params).rowcount or 0)
    _, cursor = _run(conn, stmt, table, params)
    count = int(cursor.rowcount)
    cursor.close()
    return count


def _run(
    conn: Connection, stmt: Executable, table: Table, params: dict[str, Any]
) -> tuple[_Plan, Any]:
    keys = tuple(sorted(params))
    plan = _PLANS.get((stmt, keys))
    if plan is None:
        plan = _PLANS[(stmt, keys)] = _Plan(conn, stmt, table, keys)
    return plan, driver_connection(conn).execute(plan.sql, plan.params(params))


def _insert_plan(conn: Connection, table: Table, columns: tuple[str, ...]) -> _Plan | None:
    """The compiled INSERT, or None for SQLAlchemy's own way (not SQLite, or Python-side
    defaults to fill in for missing columns)."""
    key = (table, columns, conn.dialect.name)
    if key not in _INSERTS:
        missing = [c for c in table.columns if c.name not in columns]
        usable = conn.dialect.name == "sqlite" and all(c.default is None for c in missing)
        _INSERTS[key] = _Plan(conn, insert(table), table, columns) if usable else None
    return _INSERTS[key]


def driver_connection(conn: Connection) -> Any:
    """The DB-API connection under ``conn`` (the driver's own: no SQLAlchemy per call)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


def _getter(order: tuple[str, ...]) -> Values:
    if not order:
        return lambda row: ()
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
