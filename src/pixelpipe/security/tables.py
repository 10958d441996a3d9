"""The ``api_keys`` table (migrations: pixelpipe/migrations/versions/0004_api_keys.py, 0006).

A key is shown once, when it is created; only a SHA-256 hash of its secret part is kept. The id is
not secret: it names the key in ledger entries, budgets (scope ``key:<id>``) and usage reports.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, String, Table, Text

from pixelpipe.db import metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", String(64), nullable=False),  # comma-separated: generate,read,admin
    Column("rpm", Integer, nullable=False),  # requests per minute; 0 = unlimited
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("webhook_url", Text),  # default completion webhook of the key's jobs (0006)
)
