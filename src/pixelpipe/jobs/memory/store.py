"""MemoryJobStore: the job store in one process's memory, nothing persisted.

For tests and throw-away runs (with :class:`pixelpipe.ledger.MemoryLedger`). It keeps the SQL
store's semantics, checked by the same contract suite: each method changes the tables without
awaiting, so it is atomic on its event loop; listeners are woken the same way.
"""

from __future__ import annotations

from pixelpipe.jobs.memory.changes import MemoryJobChanges
from pixelpipe.jobs.memory.creation import MemoryJobCreation
from pixelpipe.jobs.memory.deliveries import MemoryProviderDeliveries
from pixelpipe.jobs.memory.events import MemoryJobEvents
from pixelpipe.jobs.memory.images import MemoryImageIndex
from pixelpipe.jobs.memory.leases import MemoryLeases
from pixelpipe.jobs.memory.queries import MemoryJobQueries
from pixelpipe.jobs.memory.queue import MemoryQueueControl
from pixelpipe.jobs.memory.slots import MemoryBackendSlots


class MemoryJobStore(
    MemoryJobCreation,
    MemoryJobChanges,
    MemoryJobQueries,
    MemoryJobEvents,
    MemoryImageIndex,
    MemoryLeases,
    MemoryProviderDeliveries,
    MemoryBackendSlots,
    MemoryQueueControl,
):
    """All of :class:`pixelpipe.jobs.store.JobStore` in memory."""
