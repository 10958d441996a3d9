"""Alembic environment: runs migrations synchronously on the sync flavour of the app's URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
sync_url = url.replace("+aiosqlite", "")

connectable = create_engine(sync_url, poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, render_as_batch=sync_url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()
connectable.dispose()
