"""What a pixelpipe server on the embedded defaults holds, read from its SQLite file (rows, a job's
ledger entries and events), and the few HTTP steps every self-hosted end-to-end test takes against
it (submit, wait, fetch the image)."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

from tests.support.serve import Server

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


def job_row(srv: Server, job_id: str) -> tuple[Any, ...]:
    """The job's (status, attempt, provider, provider_job_id)."""
    sql = "SELECT status, attempt, provider, provider_job_id FROM jobs WHERE id = ?"
    (row,) = query(srv.data_dir, sql, job_id)
    return row


def events(srv: Server, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The job's events, oldest first: (type, data)."""
    sql = "SELECT type, data FROM job_events WHERE job_id = ? ORDER BY id"
    return [(kind, json.loads(data)) for kind, data in query(srv.data_dir, sql, job_id)]


def submit(srv: Server, body: dict[str, Any]) -> str:
    """``POST /v1/generations``: the new job's id (202 expected)."""
    resp = httpx.post(f"{srv.url}/v1/generations", json=body, timeout=30)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def wait_done(srv: Server, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """The generation once it has succeeded, failed or been canceled."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = httpx.get(f"{srv.url}/v1/generations/{job_id}", timeout=30).json()
        if body["status"] in ("succeeded", "failed", "canceled"):
            return body
        assert time.monotonic() < deadline, f"{job_id} still {body['status']}: {body}"
        time.sleep(0.1)


def image_bytes(srv: Server, gen: dict[str, Any]) -> bytes:
    """The generation's stored image, through its URL."""
    url = gen["image"]["url"]
    resp = httpx.get(url if url.startswith("http") else srv.url + url, timeout=30)
    assert resp.status_code == 200
    return resp.content
