"""The job store: jobs, their events, the image index and webhook deliveries, in SQL.

One implementation serves SQLite (embedded) and PostgreSQL (scale-out): SQLAlchemy Core, guarded
``UPDATE … WHERE status IN (…)`` transitions, ``FOR UPDATE SKIP LOCKED`` claims (a no-op on SQLite,
where ``BEGIN IMMEDIATE`` already serialises writers). Each status change and its event are written
in one transaction; listeners are woken after commit through the Notifier.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Executable,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from pixelpipe.compiled_sql import first_row, insert_row
from pixelpipe.db import Database
from pixelpipe.errors import Conflict, IdempotencyMismatch
from pixelpipe.events.base import ALL, Notifier
from pixelpipe.jobs.cache import BoundedCache
from pixelpipe.jobs.model import (
    RUNNABLE,
    TERMINAL,
    ImageRecord,
    Job,
    JobEvent,
    JobStatus,
    check_transition,
)
from pixelpipe.jobs.rows import image_to_row, job_to_row, row_to_event, row_to_image, row_to_job
from pixelpipe.jobs.snapshots import snapshot
from pixelpipe.jobs.tables import (
    idempotency_aliases,
    images,
    job_events,
    jobs,
    webhook_deliveries,
)

_RUNNABLE = [str(s) for s in RUNNABLE]
T = TypeVar("T")

# Hot statements are built once; values travel as parameters (``w_*`` name the WHERE binds, the
# rest are columns to SET). Building ``.values(**row)`` per call coerced every value into a
# literal bind and regenerated the statement's cache key: ~0.3 ms of CPU per statement. Inserts
# need no statement here: ``compiled_sql.insert_row`` compiles ``insert(table)`` per column set.
_IMAGE_EXISTS = select(images.c.content_key).where(images.c.content_key == bindparam("w_key"))
_IMAGE_BY_KEY = select(images).where(images.c.content_key == bindparam("w_key"))
# the index row of an image, locked: shared by a cache hit that is about to reference it, exclusive
# by a delete that may drop it (PostgreSQL; on SQLite BEGIN IMMEDIATE serialises the writers)
_IMAGE_SHARED = _IMAGE_EXISTS.with_for_update(read=True)
_IMAGE_LOCKED = _IMAGE_BY_KEY.with_for_update()
_OTHER_JOB_WITH_KEY = (
    select(jobs.c.id)
    .where(jobs.c.content_key == bindparam("w_key"), jobs.c.id != bindparam("w_id"))
    .limit(1)
)
_TOMBSTONE = select(job_events.c.id).where(
    job_events.c.job_id == bindparam("w_job"), job_events.c.type == "deleted"
)
_BY_ID = jobs.c.id == bindparam("w_id")
_JOB_BY_ID = select(jobs).where(_BY_ID)
_JOB_IN_FLIGHT = select(jobs).where(jobs.c.inflight_key == bindparam("w_key"))
_JOB_BY_IDEMPOTENCY = select(jobs).where(jobs.c.idempotency_key == bindparam("w_key"))
_ALIAS_BY_KEY = select(idempotency_aliases).where(
    idempotency_aliases.c.idempotency_key == bindparam("w_key")
)
_EVENTS_SINCE = (
    select(job_events)
    .where(job_events.c.job_id == bindparam("w_job"), job_events.c.id > bindparam("w_after"))
    .order_by(job_events.c.id)
)
_BY_OWNER = jobs.c.lease_owner == bindparam("w_owner")
_UPDATE = {False: update(jobs).where(_BY_ID), True: update(jobs).where(_BY_ID, _BY_OWNER)}
_TRANSITIONS: dict[tuple[int, bool], Update] = {}


def _transition_stmt(n_expected: int, owned: bool) -> Update:
    """``UPDATE jobs … WHERE id = ? AND status IN (?, …) [AND lease_owner = ?] RETURNING *``
    with one plain bind per expected status (an expanding IN is re-rendered on every run)."""
    key = (n_expected, owned)
    if key not in _TRANSITIONS:
        statuses = jobs.c.status.in_([bindparam(f"w_status{i}") for i in range(n_expected)])
        where = [_BY_ID, statuses, _BY_OWNER] if owned else [_BY_ID, statuses]
        _TRANSITIONS[key] = update(jobs).where(*where).returning(jobs)
    return _TRANSITIONS[key]


@dataclass(frozen=True, slots=True)
class Admission:
    job: Job  # the new job, or the earlier one this request attaches to
    created: bool
    image: ImageRecord | None = None  # the key's image is stored: serve it, nothing was written


@dataclass(frozen=True, slots=True)
class Deletion:
    """What :meth:`JobStore.delete` did. ``found`` is False for an id that never existed."""

    found: bool
    already: bool = False  # deleted by an earlier call: nothing more was done
    orphaned: tuple[str, ...] = ()  # storage keys no remaining job references: delete them
    content_key: str | None = None  # set when the image index row was deleted


_GONE = object()  # a cache hit's image was deleted before the hit could reference it


class JobStore:
    def __init__(self, db: Database, notifier: Notifier, *, image_cache: int = 10_000) -> None:
        self.db = db
        self.notifier = notifier
        self._images: BoundedCache[str, ImageRecord] = BoundedCache(image_cache)

    # ---- creation ---------------------------------------------------------------------------
    async def create(
        self, job: Job, *, single_flight: bool, fingerprint: str | None = None
    ) -> tuple[Job, bool]:
        """Insert ``job`` unless its idempotency key or (single-flight) content key is taken.

        Returns ``(job, True)`` when inserted, or ``(existing, False)`` when the request attaches
        to an earlier job. Raises IdempotencyMismatch when a key is reused for another request.
        """
        row = job_to_row(job)
        row["request_fingerprint"] = fingerprint
        row["inflight_key"] = job.content_key if single_flight and not job.status.terminal else None
        if not single_flight and not job.idempotency_key:
            try:  # nothing to look up: a fresh id cannot collide, so append in bulk
                event = _event_row(job.id, "status", _status_data(job), job.created_at, job)
                await self.db.append([(jobs, row), (job_events, event)])
            except IntegrityError:
                pass  # fall through to the checked path
            else:
                await self._wake(job.id)
                return job, True

        def work(conn: Connection) -> Job | None:
            return self._insert_unless_taken(conn, job, row, single_flight, fingerprint)

        existing = await self._write_racing(work)
        if existing is not None:
            return existing, False
        await self._wake(job.id)
        return job, True

    async def admit(
        self,
        job: Job,
        *,
        fingerprint: str | None = None,
        guard: Callable[[Connection], object] | None = None,
    ) -> Admission:
        """A new request's one write: in a single unit of work, look for the stored image of its
        key (then nothing is written), an earlier job it attaches to (idempotency key or
        single flight), run ``guard`` (the budget reservation; its error rolls the unit back),
        and insert the job. One commit instead of a read and two writes."""
        row = job_to_row(job)
        row["request_fingerprint"] = fingerprint
        row["inflight_key"] = job.content_key

        def work(conn: Connection) -> Admission:
            found = first_row(conn, _IMAGE_BY_KEY, images, {"w_key": job.content_key})
            if found is not None:
                return Admission(job, created=False, image=row_to_image(found))
            existing = self._insert_unless_taken(conn, job, row, True, fingerprint, guard)
            return Admission(existing or job, created=existing is None)

        admission = await self._write_racing(work)
        if admission.image is not None:
            self._images[job.content_key] = admission.image
        if admission.created:
            await self._wake(job.id)
        return admission

    async def create_cache_hit(
        self, job: Job, *, fingerprint: str | None = None
    ) -> tuple[Job, bool] | None:
        """Insert a cache-hit ``job`` (like :meth:`create`, without single flight) only while
        its image is still indexed, checked under a share lock in the same unit of work: a
        concurrent :meth:`delete` then either sees this job and keeps the image, or deletes it
        first and this answers None (the image is forgotten here; generate it again)."""
        row = job_to_row(job)
        row["request_fingerprint"] = fingerprint
        row["inflight_key"] = None
        params = {"w_key": job.content_key}

        def work(conn: Connection) -> Job | object | None:
            if first_row(conn, _IMAGE_SHARED, images, params) is None:
                return _GONE
            return self._insert_unless_taken(conn, job, row, False, fingerprint)

        existing = await self._write_racing(work)
        if existing is _GONE:
            self._images.discard(job.content_key)
            return None
        if isinstance(existing, Job):
            return existing, False
        await self._wake(job.id)
        return job, True

    async def delete(self, job_id: str) -> Deletion:
        """Delete a finished job, its events and idempotency aliases, leaving a tombstone event
        (so a repeated delete is recognised). Its image index row goes too when no other job
        has the same content key; the caller then deletes ``orphaned`` from storage. Ledger
        entries are never touched: the money history stays. A job still running raises
        Conflict (cancel it first)."""
        now = time.time()

        def work(conn: Connection) -> Deletion:
            row = first_row(conn, _JOB_BY_ID, jobs, {"w_id": job_id})
            if row is None:
                gone = conn.execute(_TOMBSTONE, {"w_job": job_id}).first()
                return Deletion(found=gone is not None, already=gone is not None)
            job = row_to_job(row)
            if not job.status.terminal:
                raise Conflict(
                    f"generation {job_id} is still {job.status}; cancel it first "
                    f"(POST /v1/generations/{job_id}/cancel), then delete it",
                    status=str(job.status),
                )
            key = {"w_key": job.content_key}
            image = conn.execute(_IMAGE_LOCKED, key).first()  # before counting the references
            conn.execute(delete(jobs).where(jobs.c.id == job_id))
            conn.execute(delete(job_events).where(job_events.c.job_id == job_id))
            conn.execute(delete(idempotency_aliases).where(idempotency_aliases.c.job_id == job_id))
            self._event(conn, job_id, "deleted", {}, now)
            if conn.execute(_OTHER_JOB_WITH_KEY, {**key, "w_id": job_id}).first() is not None:
                return Deletion(found=True)  # the image is shared: it stays
            keys = {job.storage_key, job.thumb_key}
            if image is not None:
                conn.execute(delete(images).where(images.c.content_key == job.content_key))
                keys |= {image.storage_key, image.thumb_key}
            orphaned = tuple(sorted(k for k in keys if k))
            return Deletion(found=True, orphaned=orphaned, content_key=job.content_key)

        done = await self.db.write(work)
        if done.content_key is not None:
            self._images.discard(done.content_key)
        return done

    def cached_image(self, content_key: str) -> ImageRecord | None:
        """The image of a key when this process has seen it (images are immutable)."""
        return self._images.get(content_key)

    def _insert_unless_taken(
        self,
        conn: Connection,
        job: Job,
        row: dict[str, Any],
        single_flight: bool,
        fingerprint: str | None,
        guard: Callable[[Connection], object] | None = None,
    ) -> Job | None:
        """The earlier job this request attaches to, or None after running ``guard`` and
        inserting ``row`` with its first status event."""
        existing = self._existing(conn, job, single_flight, fingerprint)
        if existing is not None:
            return existing
        if guard is not None:
            guard(conn)
        insert_row(conn, jobs, row)
        self._event(conn, job.id, "status", _status_data(job), job.created_at, job)
        return None

    async def _write_racing(self, work: Callable[[Connection], T]) -> T:
        """Run a checked insert; an IntegrityError means another process inserted the same key
        in between, so look again (three times; a fourth failure is raised)."""
        for _ in range(3):
            try:
                return await self.db.write(work)
            except IntegrityError:
                continue
        return await self.db.write(work)

    def _existing(
        self, conn: Connection, job: Job, single_flight: bool, fingerprint: str | None
    ) -> Job | None:
        if job.idempotency_key:
            found = first_row(conn, _JOB_BY_IDEMPOTENCY, jobs, {"w_key": job.idempotency_key})
            used_with = found["request_fingerprint"] if found is not None else None
            if found is None:  # the key may have attached to another request's job
                alias = first_row(
                    conn, _ALIAS_BY_KEY, idempotency_aliases, {"w_key": job.idempotency_key}
                )
                if alias is not None:
                    used_with = alias["request_fingerprint"]
                    found = first_row(conn, _JOB_BY_ID, jobs, {"w_id": alias["job_id"]})
            if found is not None:
                if fingerprint and used_with != fingerprint:
                    raise IdempotencyMismatch(
                        "this Idempotency-Key was already used with a different request body; "
                        "use a new key for a new request"
                    )
                return row_to_job(found)
        if single_flight:
            found = first_row(conn, _JOB_IN_FLIGHT, jobs, {"w_key": job.content_key})
            if found is not None:
                if job.idempotency_key:  # remember where this key went (a retry must find it)
                    conn.execute(
                        insert(idempotency_aliases).values(
                            idempotency_key=job.idempotency_key,
                            job_id=found["id"],
                            request_fingerprint=fingerprint,
                            created_at=time.time(),
                        )
                    )
                return row_to_job(found)
        return None

    # ---- reads ------------------------------------------------------------------------------
    async def get(self, job_id: str) -> Job | None:
        params = {"w_id": job_id}
        row = await self.db.read_sync(lambda conn: conn.execute(_JOB_BY_ID, params).first())
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
    ) -> list[Job]:
        """Newest first; ``before`` is the cursor (an id: ids sort by creation time)."""
        stmt = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if before:
            stmt = stmt.where(jobs.c.id < before)
        if model:
            stmt = stmt.where(jobs.c.model == model)
        if group:
            stmt = stmt.where(jobs.c.group_id == group)
        if status:
            stmt = stmt.where(jobs.c.status == status)
        if query:
            escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(
                func.lower(func.json_extract(jobs.c.request, "$.prompt")).like(
                    f"%{escaped}%", escape="\\"
                )
                if self.db.dialect == "sqlite"
                else func.lower(jobs.c.request["prompt"].as_string()).like(
                    f"%{escaped}%", escape="\\"
                )
            )
        return [row_to_job(r) for r in await self._all(stmt)]

    async def find_by_provider_job(self, provider: str, provider_job_id: str) -> Job | None:
        stmt = select(jobs).where(
            and_(jobs.c.provider == provider, jobs.c.provider_job_id == provider_job_id)
        )
        row = await self._first(stmt.order_by(jobs.c.id.desc()).limit(1))
        return row_to_job(row) if row else None

    async def count_by_status(self) -> dict[str, int]:
        stmt = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        return {str(row[0]): int(row[1]) for row in await self._all(stmt)}

    # ---- state changes ----------------------------------------------------------------------
    async def transition(
        self,
        job_id: str,
        expected: JobStatus | Iterable[JobStatus],
        target: JobStatus,
        *,
        owner: str | None = None,
        event: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move a job from one of ``expected`` to ``target``; None if it was no longer there.

        Terminal targets clear the single-flight key, the lease and the schedule.
        """
        allowed = [expected] if isinstance(expected, JobStatus) else list(expected)
        for current in allowed:
            check_transition(current, target)
        now = time.time()
        values: dict[str, Any] = {"status": str(target), "updated_at": now, **fields}
        if target in TERMINAL:
            values.update(
                inflight_key=None, lease_owner=None, lease_expires_at=None, next_run_at=None
            )
            values.setdefault("finished_at", now)
        stmt = _transition_stmt(len(allowed), owner is not None)
        params = {**values, "w_id": job_id}
        params.update((f"w_status{i}", str(s)) for i, s in enumerate(allowed))
        if owner is not None:
            params["w_owner"] = owner

        def work(conn: Connection) -> Job | None:
            row = first_row(conn, stmt, jobs, params)
            if row is None:
                return None
            moved = row_to_job(row)
            self._event(
                conn, job_id, "status", {**_status_data(moved), **(event or {})}, now, moved
            )
            return moved

        job = await self.db.write(work)
        if job is not None:
            await self._wake(job_id)
        return job

    async def update(self, job_id: str, *, owner: str | None = None, **fields: Any) -> bool:
        """Change fields without a status change (schedule, progress, lease)."""
        stmt = _UPDATE[owner is not None]
        params = {**fields, "updated_at": time.time(), "w_id": job_id}
        if owner is not None:
            params["w_owner"] = owner

        def work(conn: Connection) -> bool:
            return bool((conn.execute(stmt, params)).rowcount)

        return await self.db.write(work)

    async def add_event(self, job_id: str, type_: str, data: dict[str, Any]) -> None:
        now = time.time()
        await self.db.write(lambda conn: self._event(conn, job_id, type_, data, now))
        await self._wake(job_id)

    async def events_since(self, job_id: str, after_id: int = 0) -> list[JobEvent]:
        params = {"w_job": job_id, "w_after": after_id}
        rows = await self.db.read_sync(lambda conn: conn.execute(_EVENTS_SINCE, params).all())
        return [row_to_event(r) for r in rows]

    async def events_with_job(
        self, job_id: str, after_id: int
    ) -> tuple[list[JobEvent], Job | None]:
        """:meth:`events_since` plus, when a status event is among them, the job as it is now
        (its fixed fields complete each event's snapshot, :func:`~pixelpipe.jobs.snapshots.job_at`):
        one read (one thread hop) per wake-up of a live status stream."""

        def work(conn: Connection) -> tuple[list[JobEvent], Job | None]:
            params = {"w_job": job_id, "w_after": after_id}
            events = [row_to_event(r) for r in conn.execute(_EVENTS_SINCE, params).all()]
            if not any(ev.type == "status" for ev in events):
                return events, None
            row = conn.execute(_JOB_BY_ID, {"w_id": job_id}).first()
            return events, row_to_job(row) if row is not None else None

        return await self.db.read_sync(work)

    async def status_events_after(self, after_id: int, *, limit: int = 500) -> list[JobEvent]:
        """Status events of every job after a global event id (the all-jobs stream)."""
        stmt = (
            select(*(c for c in job_events.c if c.name != "snapshot"))  # the feed needs no job
            .where(job_events.c.id > after_id, job_events.c.type == "status")
            .order_by(job_events.c.id)
            .limit(limit)
        )
        return [row_to_event(r) for r in await self._all(stmt)]

    async def last_event_id(self) -> int:
        stmt = select(func.coalesce(func.max(job_events.c.id), 0))
        return int(await self.db.read_sync(lambda conn: conn.execute(stmt).scalar_one()))

    # ---- leases -----------------------------------------------------------------------------
    async def claim_due(self, owner: str, *, limit: int, lease_s: float) -> list[Job]:
        """Lease up to ``limit`` runnable jobs whose time has come (expired leases included)."""
        now = time.time()
        due = and_(
            jobs.c.status.in_(_RUNNABLE),
            jobs.c.next_run_at <= now,
            or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
        )
        pick = (
            select(jobs.c.id)
            .where(due)
            .order_by(jobs.c.next_run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

        def work(conn: Connection) -> list[Job]:
            ids = [r[0] for r in (conn.execute(pick)).all()]
            if not ids:
                return []
            res = conn.execute(
                update(jobs)
                .where(jobs.c.id.in_(ids), due)
                .values(lease_owner=owner, lease_expires_at=now + lease_s)
                .returning(jobs)
            )
            return [row_to_job(r) for r in res.all()]

        return await self.db.write(work)

    async def claim(self, job_id: str, owner: str, *, lease_s: float) -> Job | None:
        """Lease one job by id (queue delivery), if it is runnable and not leased by another."""
        now = time.time()
        stmt = (
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.status.in_(_RUNNABLE),
                or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
            )
            .values(lease_owner=owner, lease_expires_at=now + lease_s)
            .returning(jobs)
        )

        def work(conn: Connection) -> Job | None:
            row = (conn.execute(stmt)).first()
            return row_to_job(row) if row else None

        return await self.db.write(work)

    async def renew_leases(self, job_ids: list[str], owner: str, lease_s: float) -> int:
        """Extend the leases ``owner`` still holds on ``job_ids`` (a running worker's heartbeat)."""
        stmt = (
            update(jobs)
            .where(jobs.c.id.in_(job_ids), jobs.c.lease_owner == owner)
            .values(lease_expires_at=time.time() + lease_s)
        )

        def work(conn: Connection) -> int:
            return int((conn.execute(stmt)).rowcount or 0)

        return await self.db.write(work)

    async def release(self, job_id: str, owner: str, **fields: Any) -> None:
        await self.update(job_id, owner=owner, lease_owner=None, lease_expires_at=None, **fields)

    async def release_all(self, owner: str) -> int:
        """Graceful shutdown: hand every lease of ``owner`` back for immediate pick-up."""
        stmt = (
            update(jobs)
            .where(jobs.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
        return await self.db.write(lambda conn: int(conn.execute(stmt).rowcount or 0))

    # ---- sweeper queries --------------------------------------------------------------------
    async def overdue(self, now: float, *, limit: int = 500) -> tuple[list[Job], list[Job]]:
        """(jobs past their overall deadline, waiting jobs past their webhook deadline)."""
        active = [s.value for s in JobStatus if not s.terminal]
        late = select(jobs).where(jobs.c.status.in_(active), jobs.c.deadline_at < now).limit(limit)
        silent = (
            select(jobs)
            .where(
                jobs.c.status == JobStatus.WAITING.value,
                jobs.c.webhook_deadline_at < now,
                or_(jobs.c.next_run_at.is_(None), jobs.c.next_run_at > now),
            )
            .limit(limit)
        )
        a = [row_to_job(r) for r in await self._all(late)]
        b = [row_to_job(r) for r in await self._all(silent)]
        return a, b

    async def next_due_at(self) -> float | None:
        # a leased row is not due before its lease ends: without this, a running step's row
        # (due, but leased) would make the dispatcher spin on claims while the step runs
        due_at = case(
            (jobs.c.lease_expires_at > jobs.c.next_run_at, jobs.c.lease_expires_at),
            else_=jobs.c.next_run_at,
        )
        stmt = select(func.min(due_at)).where(jobs.c.status.in_(_RUNNABLE))
        value = await self.db.read_sync(lambda conn: conn.execute(stmt).scalar())
        return float(value) if value is not None else None

    # ---- images (content-addressed cache) ---------------------------------------------------
    async def find_image(self, content_key: str) -> ImageRecord | None:
        """The stored image for a key. Images are immutable, so hits are cached in memory."""
        cached = self._images.get(content_key)
        if cached is not None:
            return cached
        params = {"w_key": content_key}
        row = await self.db.read_sync(lambda conn: conn.execute(_IMAGE_BY_KEY, params).first())
        if row is None:
            return None
        rec = row_to_image(row)
        self._images[content_key] = rec
        return rec

    async def save_image(self, rec: ImageRecord) -> None:

        def work(conn: Connection) -> None:
            exists = first_row(conn, _IMAGE_EXISTS, images, {"w_key": rec.content_key})
            if exists is None:
                insert_row(conn, images, image_to_row(rec))

        try:
            await self.db.write(work)
        except IntegrityError:
            pass  # stored by a concurrent writer: content-addressed, so identical
        self._images[rec.content_key] = rec

    async def image_stats(self) -> tuple[int, int]:
        stmt = select(func.count(), func.coalesce(func.sum(images.c.bytes), 0))
        row = (await self._all(stmt))[0]
        return int(row[0]), int(row[1])

    # ---- webhook deliveries -----------------------------------------------------------------
    async def record_delivery(self, provider: str, delivery_id: str, job_id: str | None) -> bool:
        """True the first time a delivery id is seen (idempotent webhook handling)."""

        def work(conn: Connection) -> bool:
            seen = (
                conn.execute(
                    select(webhook_deliveries.c.delivery_id).where(
                        webhook_deliveries.c.provider == provider,
                        webhook_deliveries.c.delivery_id == delivery_id,
                    )
                )
            ).first()
            if seen is not None:
                return False
            conn.execute(
                insert(webhook_deliveries).values(
                    provider=provider,
                    delivery_id=delivery_id,
                    job_id=job_id,
                    received_at=time.time(),
                )
            )
            return True

        try:
            return await self.db.write(work)
        except IntegrityError:
            return False

    async def forget_delivery(self, provider: str, delivery_id: str) -> None:
        stmt = delete(webhook_deliveries).where(
            webhook_deliveries.c.provider == provider,
            webhook_deliveries.c.delivery_id == delivery_id,
        )
        await self.db.write(lambda conn: conn.execute(stmt))

    async def ping(self) -> None:
        await self._all(select(1))

    async def _all(self, stmt: Executable) -> Sequence[Any]:
        return await self.db.read_sync(lambda conn: conn.execute(stmt).all())

    async def _first(self, stmt: Executable) -> Any:
        return await self.db.read_sync(lambda conn: conn.execute(stmt).first())

    # ---- internals --------------------------------------------------------------------------
    def _event(
        self,
        conn: Connection,
        job_id: str,
        type_: str,
        data: dict[str, Any],
        now: float,
        job: Job | None = None,
    ) -> None:
        insert_row(conn, job_events, _event_row(job_id, type_, data, now, job))

    async def _wake(self, job_id: str) -> None:
        await self.notifier.publish(f"job:{job_id}", "changed")
        await self.notifier.publish(ALL, job_id)


def _event_row(
    job_id: str, type_: str, data: dict[str, Any], now: float, job: Job | None = None
) -> dict[str, Any]:
    """An event row; a status event (``job`` given) keeps the job as it is in this write."""
    row = {"job_id": job_id, "type": type_, "data": data, "created_at": now}
    if job is not None:
        row["snapshot"] = snapshot(job)
    return row


def _status_data(job: Job) -> dict[str, Any]:
    data: dict[str, Any] = {"status": str(job.status), "attempt": job.attempt}
    if job.error_code:
        data["error"] = {"code": job.error_code, "detail": job.error_detail}
    return data
