"""The SQL job store's hot statements, built once.

Values travel as parameters (``w_*`` name the WHERE binds, the rest are columns to SET). Building
``.values(**row)`` per call coerced every value into a literal bind and regenerated the statement's
cache key: ~0.3 ms of CPU per statement. Inserts need no statement here:
``compiled_sql.insert_row`` compiles ``insert(table)`` per column set.
"""

from __future__ import annotations

from sqlalchemy import Update, bindparam, select, update

from pixelpipe.jobs.model import RUNNABLE
from pixelpipe.jobs.tables import idempotency_aliases, images, job_events, jobs

RUNNABLE_STATUSES = [str(s) for s in RUNNABLE]

IMAGE_EXISTS = select(images.c.content_key).where(images.c.content_key == bindparam("w_key"))
IMAGE_BY_KEY = select(images).where(images.c.content_key == bindparam("w_key"))
# the index row of an image, locked: shared by a cache hit that is about to reference it, exclusive
# by a delete that may drop it (PostgreSQL; on SQLite BEGIN IMMEDIATE serialises the writers)
IMAGE_SHARED = IMAGE_EXISTS.with_for_update(read=True)
IMAGE_LOCKED = IMAGE_BY_KEY.with_for_update()
OTHER_JOB_WITH_KEY = (
    select(jobs.c.id)
    .where(jobs.c.content_key == bindparam("w_key"), jobs.c.id != bindparam("w_id"))
    .limit(1)
)
TOMBSTONE = select(job_events.c.id).where(
    job_events.c.job_id == bindparam("w_job"), job_events.c.type == "deleted"
)
_BY_ID = jobs.c.id == bindparam("w_id")
JOB_BY_ID = select(jobs).where(_BY_ID)
JOB_IN_FLIGHT = select(jobs).where(jobs.c.inflight_key == bindparam("w_key"))
JOB_BY_IDEMPOTENCY = select(jobs).where(jobs.c.idempotency_key == bindparam("w_key"))
ALIAS_BY_KEY = select(idempotency_aliases).where(
    idempotency_aliases.c.idempotency_key == bindparam("w_key")
)
EVENTS_SINCE = (
    select(job_events)
    .where(job_events.c.job_id == bindparam("w_job"), job_events.c.id > bindparam("w_after"))
    .order_by(job_events.c.id)
)
_BY_OWNER = jobs.c.lease_owner == bindparam("w_owner")
UPDATE = {False: update(jobs).where(_BY_ID), True: update(jobs).where(_BY_ID, _BY_OWNER)}
_TRANSITIONS: dict[tuple[int, bool], Update] = {}


def transition_stmt(n_expected: int, owned: bool) -> Update:
    """``UPDATE jobs … WHERE id = ? AND status IN (?, …) [AND lease_owner = ?] RETURNING *``
    with one plain bind per expected status (an expanding IN is re-rendered on every run)."""
    key = (n_expected, owned)
    if key not in _TRANSITIONS:
        statuses = jobs.c.status.in_([bindparam(f"w_status{i}") for i in range(n_expected)])
        where = [_BY_ID, statuses, _BY_OWNER] if owned else [_BY_ID, statuses]
        _TRANSITIONS[key] = update(jobs).where(*where).returning(jobs)
    return _TRANSITIONS[key]
