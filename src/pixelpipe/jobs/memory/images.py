"""The image index in memory (it is this process's memory of the images, too)."""

from __future__ import annotations

from pixelpipe.jobs.memory.base import MemoryStoreBase
from pixelpipe.jobs.model import ImageRecord


class MemoryImageIndex(MemoryStoreBase):
    def cached_image(self, content_key: str) -> ImageRecord | None:
        return self._tables.images.get(content_key)

    async def find_image(self, content_key: str) -> ImageRecord | None:
        return self._tables.images.get(content_key)

    async def save_image(self, rec: ImageRecord) -> None:
        self._tables.images.setdefault(rec.content_key, rec)  # content-addressed: first stays

    async def image_stats(self) -> tuple[int, int]:
        stored = self._tables.images.values()
        return len(stored), sum(rec.bytes for rec in stored)
