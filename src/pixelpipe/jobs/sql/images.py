"""The image index in SQL, with this process's memory of the images it has seen."""

from __future__ import annotations

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from pixelpipe.compiled_sql import execute, first_row, insert_row
from pixelpipe.jobs.model import ImageRecord
from pixelpipe.jobs.rows import image_to_row, row_to_image
from pixelpipe.jobs.sql.base import SqlStoreBase
from pixelpipe.jobs.sql.statements import IMAGE_BY_KEY, IMAGE_EXISTS
from pixelpipe.jobs.tables import images

_STATS = select(func.count(), func.coalesce(func.sum(images.c.bytes), 0))
# one statement where the dialect has one: a look and an insert are two round trips to SQLite,
# each giving the GIL up in the committer's thread (ADR 0014)
_INSERT_UNLESS_INDEXED = {
    "sqlite": sqlite.insert(images).on_conflict_do_nothing(),
    "postgresql": postgresql.insert(images).on_conflict_do_nothing(),
}


class SqlImageIndex(SqlStoreBase):
    def cached_image(self, content_key: str) -> ImageRecord | None:
        return self._images.get(content_key)

    async def find_image(self, content_key: str) -> ImageRecord | None:
        """Images are immutable, so hits are remembered."""
        cached = self._images.get(content_key)
        if cached is not None:
            return cached
        params = {"w_key": content_key}
        row = await self.db.read_sync(lambda conn: conn.execute(IMAGE_BY_KEY, params).first())
        if row is None:
            return None
        rec = row_to_image(row)
        self._images[content_key] = rec
        return rec

    async def save_image(self, rec: ImageRecord) -> None:
        def work(conn: Connection) -> None:
            unless_indexed = _INSERT_UNLESS_INDEXED.get(conn.dialect.name)
            if unless_indexed is not None:
                execute(conn, unless_indexed, images, image_to_row(rec))
            elif first_row(conn, IMAGE_EXISTS, images, {"w_key": rec.content_key}) is None:
                insert_row(conn, images, image_to_row(rec))

        try:
            await self.db.write(work)
        except IntegrityError:
            pass  # stored by a concurrent writer: content-addressed, so identical
        self._images[rec.content_key] = rec

    async def image_stats(self) -> tuple[int, int]:
        row = (await self._all_rows(_STATS))[0]
        return int(row[0]), int(row[1])
