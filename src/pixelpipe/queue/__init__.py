"""Stage 7 — the queue carries job ids to workers; the job row stays the source of truth."""

from pixelpipe.queue.base import Queue
from pixelpipe.queue.local import LocalQueue

__all__ = ["LocalQueue", "Queue"]
