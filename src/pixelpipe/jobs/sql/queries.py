"""Reading jobs in SQL: by id, the newest-first list, by provider run, counts per status."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, select

from pixelpipe.jobs.listing import JobFilter
from pixelpipe.jobs.model import Job
from pixelpipe.jobs.rows import row_to_job
from pixelpipe.jobs.sql.base import SqlStoreBase
from pixelpipe.jobs.sql.listing import filtered
from pixelpipe.jobs.sql.statements import JOB_BY_ID
from pixelpipe.jobs.tables import jobs

_COUNT_BY_STATUS = select(jobs.c.status, func.count()).group_by(jobs.c.status)


class SqlJobQueries(SqlStoreBase):
    async def get(self, job_id: str) -> Job | None:
        params = {"w_id": job_id}
        row = await self.db.read_sync(lambda conn: conn.execute(JOB_BY_ID, params).first())
        return row_to_job(row) if row else None

    async def list_jobs(
        self,
        *,
        before: str | None = None,
        limit: int = 30,
        model: str | None = None,
        query: str | None = None,
        group: str | None = None,
        status: str | None = None,
        where: JobFilter | None = None,
    ) -> list[Job]:
        stmt = select(jobs).limit(limit)
        stmt = (
            stmt.order_by(jobs.c.id.desc())
            if where is None
            else filtered(stmt, where, self.db.dialect)
        )
        if before:
            stmt = stmt.where(jobs.c.id < before)
        if model:
            stmt = stmt.where(jobs.c.model == model)
        if group:
            stmt = stmt.where(jobs.c.group_id == group)
        if status:
            stmt = stmt.where(jobs.c.status == status)
        if query:
            stmt = stmt.where(self._prompt_contains(query))
        return [row_to_job(r) for r in await self._all_rows(stmt)]

    async def find_by_provider_job(self, provider: str, provider_job_id: str) -> Job | None:
        stmt = select(jobs).where(
            and_(jobs.c.provider == provider, jobs.c.provider_job_id == provider_job_id)
        )
        row = await self._first_row(stmt.order_by(jobs.c.id.desc()).limit(1))
        return row_to_job(row) if row else None

    async def count_by_status(self) -> dict[str, int]:
        return {str(row[0]): int(row[1]) for row in await self._all_rows(_COUNT_BY_STATUS)}

    def _prompt_contains(self, query: str) -> ColumnElement[bool]:
        escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        prompt = (
            func.json_extract(jobs.c.request, "$.prompt")
            if self.db.dialect == "sqlite"
            else jobs.c.request["prompt"].as_string()
        )
        return func.lower(prompt).like(f"%{escaped}%", escape="\\")
