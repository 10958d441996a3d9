#!/usr/bin/env python3
"""Reference "dedup cache hit" service: roughly the best an ordinary Python ASGI
stack (FastAPI + uvicorn[standard] + pydantic + aiosqlite) does per request on
this machine when the answer is already stored.

POST /v1/images/generations (same path and body as the OpenAI image API):
  1. FastAPI/pydantic validates the JSON body (ImageRequest),
  2. sha256 over its canonical JSON (sorted keys, defaults filled in),
  3. SELECT doc FROM cache WHERE key = ?  in SQLite (WAL) through aiosqlite,
  4. returns the stored ~300-byte JSON document (200), or 404 on a miss.

At start the table is filled with --filler rows plus the rows for the bodies in
--seed-body files (default: bench_body.json next to this file), so the bench
body is a hit.

Run: python reference_cache_hit.py --port 18003 --db refcache.sqlite
"""

import argparse
import hashlib
import json
import os
import sqlite3
import time
from contextlib import asynccontextmanager
from typing import Literal

import aiosqlite
from fastapi import FastAPI, Response
from pydantic import BaseModel, Field

HERE = os.path.dirname(os.path.abspath(__file__))


class ImageRequest(BaseModel):
    model: str = Field(min_length=1, max_length=64)
    prompt: str = Field(min_length=1, max_length=32000)
    n: int = Field(default=1, ge=1, le=10)
    size: str | None = Field(default="1024x1024", max_length=16)
    quality: Literal["low", "medium", "high", "auto", "standard", "hd"] | None = "auto"
    background: Literal["transparent", "opaque", "auto"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    user: str | None = Field(default=None, max_length=256)


def cache_key(req: ImageRequest) -> str:
    canon = json.dumps(req.model_dump(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def make_doc(key: str) -> bytes:
    doc = {
        "created": 1700000000,
        "cache": "hit",
        "key": key,
        "data": [{"url": f"http://127.0.0.1/blobs/{key}.png"}],
        "usage": {"input_tokens": 10, "output_tokens": 272, "total_tokens": 282},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


ARGS = None
DB: aiosqlite.Connection | None = None


def prepare_db(path: str, filler: int, seed_files):
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, doc BLOB NOT NULL, created REAL)"
    )
    have = con.execute("SELECT count(*) FROM cache").fetchone()[0]
    if have < filler:
        rows = []
        for i in range(have, filler):
            k = hashlib.sha256(f"filler-{i}".encode()).hexdigest()
            rows.append((k, make_doc(k), time.time()))
        con.executemany("INSERT OR IGNORE INTO cache VALUES (?,?,?)", rows)
    for f in seed_files:
        with open(f) as fh:
            k = cache_key(ImageRequest.model_validate_json(fh.read()))
        con.execute("INSERT OR REPLACE INTO cache VALUES (?,?,?)", (k, make_doc(k), time.time()))
    con.commit()
    con.close()


@asynccontextmanager
async def lifespan(app):
    global DB
    DB = await aiosqlite.connect(ARGS.db)
    await DB.execute("PRAGMA journal_mode=WAL")
    await DB.execute("PRAGMA synchronous=NORMAL")
    yield
    await DB.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.post("/v1/images/generations")
async def generations(req: ImageRequest):
    key = cache_key(req)
    async with DB.execute("SELECT doc FROM cache WHERE key = ?", (key,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return Response(b'{"cache":"miss"}', status_code=404, media_type="application/json")
    return Response(row[0], media_type="application/json")


@app.get("/health")
async def health():
    return {"ok": True}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18003)
    ap.add_argument("--db", default="refcache.sqlite")
    ap.add_argument("--filler", type=int, default=10000, help="extra rows in the table")
    ap.add_argument(
        "--seed-body",
        action="append",
        default=None,
        help="JSON body file(s) whose keys are inserted (default bench_body.json)",
    )
    ARGS = ap.parse_args()
    prepare_db(ARGS.db, ARGS.filler, ARGS.seed_body or [os.path.join(HERE, "bench_body.json")])
    import uvicorn

    uvicorn.run(
        app, host=ARGS.host, port=ARGS.port, log_level="warning", access_log=False, backlog=4096
    )


if __name__ == "__main__":
    main()
