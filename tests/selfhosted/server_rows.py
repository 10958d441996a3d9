"""What a pixelpipe server on the embedded defaults holds, read from its SQLite file: rows, and
the ledger entries of a job (the self-hosted end-to-end tests look at both)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

_LEDGER = (
    "SELECT attempt, provider, provider_job_id, state, amount_micros, basis, detail, created_at "
    "FROM ledger_entries WHERE job_id = ? ORDER BY id"
)
_KEYS = ("attempt", "provider", "run", "state", "micros", "basis", "detail", "at")


def query(data_dir: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(data_dir / "pixelpipe.db", timeout=10)) as db:
        return db.execute(sql, args).fetchall()


def ledger_entries(data_dir: Path, job_id: str) -> list[dict[str, Any]]:
    """The job's ledger entries, oldest first, the detail decoded."""
    entries = [dict(zip(_KEYS, row, strict=True)) for row in query(data_dir, _LEDGER, job_id)]
    for e in entries:
        e["detail"] = json.loads(e["detail"]) if isinstance(e["detail"], str) else e["detail"]
    return entries
