"""Alembic environment: runs migrations synchronously on the sync flavour of the app's URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

# Many processes may start at once (API + workers, each migrating on start-up): on PostgreSQL they
# queue on this transaction-scoped advisory lock, and each later one finds the schema at head.
MIGRATION_LOCK_KEY = 0x5049584D  # "PIXM"

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
sync_url = url.replace("+aiosqlite", "")

connectable = create_engine(sync_url, poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, render_as_batch=sync_url.startswith("sqlite"))
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        context.run_migrations()
connectable.dispose()
