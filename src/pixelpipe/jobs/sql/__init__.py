"""The job store in SQL (SQLite, PostgreSQL)."""

from pixelpipe.jobs.sql.store import SqlJobStore

__all__ = ["SqlJobStore"]
