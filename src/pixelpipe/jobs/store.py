"""The job store boundary: jobs, their events, the image index, leases, provider deliveries and
backend slots.

Each concern is a small protocol; :class:`JobStore` is all of them together (what ``Services``
holds). Two implementations run the same contract suite (``tests/jobs/test_store_contract.py``):
:class:`pixelpipe.jobs.sql.SqlJobStore` (SQLite embedded, PostgreSQL scale-out) and
:class:`pixelpipe.jobs.memory.MemoryJobStore` (one process, nothing persisted).

Every status change is guarded (``WHERE status IN expected``, see :mod:`pixelpipe.jobs.model`) and
written with its status event in one unit of work; listeners are woken through the Notifier after
it is committed (channels ``job:<id>`` and ``all``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pixelpipe.jobs.listing import JobFilter
from pixelpipe.jobs.model import ImageRecord, Job, JobEvent, JobStatus
from pixelpipe.jobs.slots import InLine, SlotRequest, SlotUse
from pixelpipe.ledger.base import Reservation


@dataclass(frozen=True, slots=True)
class Admission:
    """What :meth:`JobRows.admit` did with a new request."""

    job: Job  # the new job, or the earlier one this request attaches to
    created: bool
    image: ImageRecord | None = None  # the key's image is stored: serve it, nothing was written


@dataclass(frozen=True, slots=True)
class Opening:
    """The move to submitting that a new job's admission makes in its own unit of work
    (:meth:`JobRows.admit`): the job is handed over in memory to the dispatcher holding its lease
    (``job.lease_owner``), which sends it to its provider at once — one commit instead of two
    before the provider is called (:func:`pixelpipe.worker.submit.opening`)."""

    fields: dict[str, Any]  # the columns the move sets (attempt, submitted_at)
    entry: dict[str, Any] | None = None  # the attempt's pending ledger row (Ledger.pending_values)


@dataclass(frozen=True, slots=True)
class Deletion:
    """What :meth:`JobRows.delete` did. ``found`` is False for an id that never existed."""

    found: bool
    already: bool = False  # deleted by an earlier call: nothing more was done
    orphaned: tuple[str, ...] = ()  # storage keys no remaining job references: delete them
    content_key: str | None = None  # set when the image index row was deleted


@runtime_checkable
class JobRows(Protocol):
    """The jobs themselves: creation (idempotency keys, single flight), reads, guarded changes."""

    async def create(
        self, job: Job, *, single_flight: bool, fingerprint: str | None = None
    ) -> tuple[Job, bool]:
        """Insert ``job`` unless its idempotency key or (single-flight) content key is taken.

        Returns ``(job, True)`` when inserted, or ``(existing, False)`` when the request attaches
        to an earlier job (an Idempotency-Key that attached to another request's in-flight job
        keeps pointing at that job). Raises IdempotencyMismatch when a key is reused with another
        ``fingerprint``."""
        ...

    async def admit(
        self,
        job: Job,
        *,
        fingerprint: str | None = None,
        guard: Reservation | None = None,
        opening: Opening | None = None,
    ) -> Admission:
        """A new request's one write: the stored image of its key (then nothing is written), or
        the earlier job it attaches to (idempotency key or single flight), or — after making the
        budget reservation ``guard`` in the same unit of work (its refusal writes nothing) — the
        job inserted. ``guard`` comes from a ledger sharing this store's database
        (``Ledger.reservation``); a store that cannot make it raises ConfigError.

        ``opening``: an inserted job (queued, leased to ``job.lease_owner``) then moves on to
        submitting in the same unit of work, like :meth:`transition` with its ``entry`` (its
        status event after the queued one); ``Admission.job`` is the moved job. Nothing of it
        is written when the request attaches or is served from the image."""
        ...

    async def create_cache_hit(
        self, job: Job, *, fingerprint: str | None = None, entry: dict[str, Any] | None = None
    ) -> tuple[Job, bool] | None:
        """Insert a cache-hit ``job`` (like :meth:`create`, without single flight) only while its
        image is still indexed: a concurrent :meth:`delete` either sees this job and keeps the
        image, or deletes it first and this answers None (generate it again). ``entry``: its
        ledger row (``Ledger.entry_values``), inserted in the same unit of work when the job is
        (not when it attaches to an earlier one); a store that cannot raises ConfigError."""
        ...

    async def delete(self, job_id: str) -> Deletion:
        """Delete a finished job, its events and idempotency aliases, leaving a tombstone event
        (so a repeated delete is recognised). Its image index row goes too when no other job has
        the same content key; the caller then deletes ``orphaned`` from storage. A job still
        running raises Conflict (cancel it first)."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

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
        """Newest first; ``before`` is the cursor (an id: ids sort by creation time); ``query``
        matches the prompt, case-insensitively. ``where``: the gallery's further filters and sort
        orders (:mod:`pixelpipe.jobs.listing`)."""
        ...

    async def find_by_provider_job(self, provider: str, provider_job_id: str) -> Job | None: ...

    async def count_by_status(self) -> dict[str, int]: ...

    async def transition(
        self,
        job_id: str,
        expected: JobStatus | Iterable[JobStatus],
        target: JobStatus,
        *,
        owner: str | None = None,
        event: dict[str, Any] | None = None,
        entry: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move a job from one of ``expected`` to ``target`` (held by ``owner``, when given),
        setting ``fields``; None if it was no longer there. Terminal targets clear the
        single-flight key, the lease and the schedule. ``event`` adds to the status event.
        ``entry``: a ledger row (``Ledger.pending_values``) inserted, unless there already, in
        the same unit of work when the job moved — never when it did not; a store that cannot
        raises ConfigError."""
        ...

    async def update(self, job_id: str, *, owner: str | None = None, **fields: Any) -> bool:
        """Change fields without a status change (schedule, progress, lease)."""
        ...


@runtime_checkable
class JobEvents(Protocol):
    """Each job's events, with ids that only grow; status events keep a snapshot of the job."""

    async def add_event(self, job_id: str, type_: str, data: dict[str, Any]) -> None: ...

    async def events_since(self, job_id: str, after_id: int = 0) -> list[JobEvent]: ...

    async def events_with_job(
        self, job_id: str, after_id: int
    ) -> tuple[list[JobEvent], Job | None]:
        """:meth:`events_since` plus, when a status event is among them, the job as it is now
        (one read per wake-up of a live status stream)."""
        ...

    async def status_events_after(self, after_id: int, *, limit: int = 500) -> list[JobEvent]:
        """Status events of every job after a global event id (the all-jobs stream), without
        their snapshots."""
        ...

    async def last_event_id(self) -> int: ...


@runtime_checkable
class ImageIndex(Protocol):
    """The content-addressed image cache: one immutable record per content key."""

    def cached_image(self, content_key: str) -> ImageRecord | None:
        """The image of a key when this process has seen it (no I/O)."""
        ...

    async def find_image(self, content_key: str) -> ImageRecord | None: ...

    async def save_image(self, rec: ImageRecord) -> None:
        """Index ``rec``; a key indexed already keeps its record (content-addressed)."""
        ...

    async def image_stats(self) -> tuple[int, int]:
        """(images indexed, their bytes)."""
        ...


@runtime_checkable
class Leases(Protocol):
    """Which worker runs which job's next step, and when jobs are due."""

    async def claim_due(
        self, owner: str, *, limit: int, lease_s: float, poison_after: int = 0
    ) -> list[Job]:
        """Lease up to ``limit`` runnable jobs whose time has come (expired leases included), in
        the queue's order (:mod:`pixelpipe.jobs.order`: started runs' steps, priority, fair share
        between keys, age). A job whose last lease lapsed mid-step counts a crash; at
        ``poison_after`` crashes (0: never) it is quarantined (``held_at``) instead."""
        ...

    async def claim(
        self, job_id: str, owner: str, *, lease_s: float, poison_after: int = 0
    ) -> Job | None:
        """Lease one job by id (queue delivery), if it is runnable, not held and not leased by
        another (crashes counted as by :meth:`claim_due`)."""
        ...

    async def renew_leases(self, job_ids: list[str], owner: str, lease_s: float) -> int:
        """Extend the leases ``owner`` still holds on ``job_ids`` (a running worker's heartbeat)."""
        ...

    async def release(self, job_id: str, owner: str, **fields: Any) -> None: ...

    async def release_all(self, owner: str) -> int:
        """Graceful shutdown: hand every lease of ``owner`` back for immediate pick-up."""
        ...

    async def overdue(self, now: float, *, limit: int = 500) -> tuple[list[Job], list[Job]]:
        """(jobs past their overall deadline, waiting jobs past their webhook deadline)."""
        ...

    async def next_due_at(self) -> float | None:
        """When the next runnable job is due (a leased one not before its lease ends)."""
        ...


@runtime_checkable
class ProviderDeliveries(Protocol):
    """Provider webhook deliveries already handled (a redelivery changes nothing)."""

    async def record_delivery(self, provider: str, delivery_id: str, job_id: str | None) -> bool:
        """True the first time a delivery id is seen."""
        ...

    async def forget_delivery(self, provider: str, delivery_id: str) -> None: ...


@runtime_checkable
class BackendSlots(Protocol):
    """The slots of self-hosted backends, read from the jobs (:mod:`pixelpipe.jobs.slots`)."""

    async def start_in_slot(
        self,
        job: Job,
        owner: str,
        want: SlotRequest,
        *,
        event: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Job | InLine | None:
        """Move ``job`` (queued, leased by ``owner``) to submitting with ``fields`` when
        ``want.backend`` has a slot for it now and no job ahead in its line is owed one; else put
        it in that line (or keep its place) and say where. None: not queued, not ours, or the
        backend is paused (:meth:`QueueControl.pause`)."""
        ...

    async def slot_use(self, backends: Iterable[str]) -> dict[str, SlotUse]:
        """Each backend's runs in flight and jobs in line, as the jobs show them."""
        ...

    async def line_position(self, job: Job) -> int | None:
        """``job``'s place in its backend's line now (1 = next), or None when it is in none."""
        ...

    async def line_ids(self, backend: str) -> list[str]:
        """The ids of the jobs in ``backend``'s line now, first first (one read for all their
        places: :mod:`pixelpipe.usecases.queue_watch`)."""
        ...


@dataclass(frozen=True, slots=True)
class Pause:
    """A provider or backend an operator paused: its queued jobs wait, running ones finish."""

    target: str
    paused_at: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Waiting:
    """A queued job in the queue's order (:meth:`QueueControl.waiting_order`)."""

    id: str
    provider: str | None
    api_key_id: str | None


@runtime_checkable
class QueueControl(Protocol):
    """The queue as an operator sees and steers it (:mod:`pixelpipe.jobs.order`, docs/queue.md)."""

    async def waiting_order(self) -> list[Waiting]:
        """Every queued job that is not held, in the order they will be claimed
        (as if all were due now; jobs of a paused provider included)."""
        ...

    async def jobs_by_ids(self, ids: list[str]) -> list[Job]:
        """The jobs of ``ids`` that exist, in the order given."""
        ...

    async def in_flight(self, *, limit: int = 500) -> list[Job]:
        """Jobs running now: past ``queued`` (not held), or queued and claimed; oldest first."""
        ...

    async def set_priority(self, job_id: str, priority: int) -> Job | None:
        """Change a queued job's priority; None when it is not queued (started or finished)."""
        ...

    async def held_jobs(self, *, limit: int = 500) -> list[Job]:
        """Quarantined jobs (``held_at``), oldest first."""
        ...

    async def release_held(self, job_id: str) -> Job | None:
        """Release a quarantined job: its crashes forgotten, due now. None: it was not held."""
        ...

    async def pause(self, target: str, reason: str | None = None) -> Pause:
        """Pause a provider or backend (a repeat keeps the first pause)."""
        ...

    async def resume(self, target: str) -> bool:
        """Resume ``target`` and make its queued jobs due; False when it was not paused."""
        ...

    async def pauses(self) -> dict[str, Pause]: ...

    async def is_paused(self, target: str) -> bool:
        """Is ``target`` paused? (May be up to a second stale in another process than the one
        that paused it: claims read the pauses themselves, this is the hand-over's check.)"""
        ...


@runtime_checkable
class JobStore(
    JobRows,
    JobEvents,
    ImageIndex,
    Leases,
    ProviderDeliveries,
    BackendSlots,
    QueueControl,
    Protocol,
):
    """The whole job store, as ``Services.store``."""

    async def ping(self) -> None:
        """Raise if the store's backend does not answer (readiness)."""
        ...
