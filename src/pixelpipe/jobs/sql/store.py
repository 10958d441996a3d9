"""SqlJobStore: the job store on SQLite (embedded) or PostgreSQL (scale-out).

SQLAlchemy Core; guarded ``UPDATE … WHERE status IN (…)`` transitions; each status change and its
event written in one transaction; units of work group-committed (:mod:`pixelpipe.group_commit`)
through precompiled statements (:mod:`pixelpipe.compiled_sql`). One class per concern, in the
modules beside this one.
"""

from __future__ import annotations

from pixelpipe.jobs.sql.changes import SqlJobChanges
from pixelpipe.jobs.sql.creation import SqlJobCreation
from pixelpipe.jobs.sql.deliveries import SqlProviderDeliveries
from pixelpipe.jobs.sql.events import SqlJobEvents
from pixelpipe.jobs.sql.images import SqlImageIndex
from pixelpipe.jobs.sql.leases import SqlLeases
from pixelpipe.jobs.sql.queries import SqlJobQueries
from pixelpipe.jobs.sql.queue import SqlQueueControl
from pixelpipe.jobs.sql.slots import SqlBackendSlots


class SqlJobStore(
    SqlJobCreation,
    SqlJobChanges,
    SqlJobQueries,
    SqlJobEvents,
    SqlImageIndex,
    SqlLeases,
    SqlProviderDeliveries,
    SqlBackendSlots,
    SqlQueueControl,
):
    """All of :class:`pixelpipe.jobs.store.JobStore` on one database."""
