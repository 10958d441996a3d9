"""The job store in memory (tests, throw-away runs)."""

from pixelpipe.jobs.memory.store import MemoryJobStore

__all__ = ["MemoryJobStore"]
