"""The gallery: the filtered, sorted list of generations with each one's favourite mark and
boards, and bulk delete. Filters arrive as the text a user typed (query parameters, CLI options)
and are checked here: a bad value raises InvalidRequest saying what to send instead.

Favourites and boards are the caller's own (:mod:`pixelpipe.boards`); the list itself shows every
generation the caller may read, as ``GET /v1/generations`` does.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from pixelpipe.boards import owner_of
from pixelpipe.errors import Conflict, Forbidden, InvalidRequest, NotFound
from pixelpipe.jobs.ids import is_job_id
from pixelpipe.jobs.listing import SORTS, JobFilter, Sort, sort_key
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.jobs import delete

MAX_SELECTION = 1000  # ids per bulk call (archive, delete, board add/remove, favourites)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
_MICROS = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class GalleryQuery:
    """The gallery's filters as typed; empty strings mean "not filtered"."""

    model: str = ""
    provider: str = ""
    status: str = ""
    since: str = ""  # a date (2026-12-01) or ISO date-time; inclusive
    until: str = ""  # likewise; a date includes that whole day (UTC)
    board: str = ""
    favourite: bool = False
    cost_min: str = ""  # USD, e.g. 0.01
    cost_max: str = ""
    sort: str = "newest"
    q: str = ""
    group: str = ""
    cursor: str = ""
    limit: int = 30


@dataclass(frozen=True, slots=True)
class GalleryPage:
    jobs: list[Job]
    next_cursor: str | None
    favourites: frozenset[str] = frozenset()
    boards: dict[str, list[str]] = field(default_factory=dict)  # job id -> the caller's boards


def _name(value: str, what: str) -> str | None:
    if not value:
        return None
    if not _NAME.match(value):
        raise InvalidRequest(
            f"{what} {value!r} is not a {what} name: letters, digits and ._:/- only, "
            "at most 64 characters (GET /v1/models lists them)"
        )
    return value


def _status(value: str) -> str | None:
    if not value:
        return None
    if value not in {s.value for s in JobStatus}:
        allowed = ", ".join(s.value for s in JobStatus)
        raise InvalidRequest(f"status {value!r} is not a job status: use one of {allowed}")
    return value


def _when(value: str, what: str, *, end_of_day: bool = False) -> float | None:
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return (start + timedelta(days=1 if end_of_day else 0)).timestamp()
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{what} {value!r} is not a date: send YYYY-MM-DD or an ISO 8601 date-time "
            "such as 2026-12-01T09:30:00Z"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _usd(value: str, what: str) -> int | None:
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -6:  # type: ignore[operator]
        raise InvalidRequest(
            f"{what} {value!r} is not an amount of USD: send a number of dollars such as 0.04 "
            "(0 or more, at most 6 decimals)"
        )
    return int(amount * _MICROS)


def _sort(value: str) -> Sort:
    for sort in SORTS:
        if value == sort:
            return sort
    raise InvalidRequest(f"sort {value!r} is not a sort order: use one of {', '.join(SORTS)}")


def _cursor(value: str, sort: Sort) -> tuple[int, str] | None:
    if not value:
        return None
    cost, _, job_id = value.rpartition(":") if sort.startswith("cost") else ("0", "", value)
    try:
        position = (int(cost), job_id)
    except ValueError:
        position = (0, "")
    if not is_job_id(position[1]):
        raise InvalidRequest(
            f"cursor {value!r} is not one this list gave for sort={sort}: pass next_cursor "
            "back unchanged with the same filters, or start again without a cursor"
        )
    return position


def _cursor_of(job: Job, sort: Sort) -> str:
    cost, job_id = sort_key(job, sort)
    return f"{cost}:{job_id}" if sort.startswith("cost") else job_id


async def _only(svc: Services, owner: str, q: GalleryQuery) -> frozenset[str] | None:
    """The ids a board or the favourites filter keeps (None: no such filter)."""
    only: frozenset[str] | None = None
    if q.board:
        only = await svc.boards.members(owner, q.board)
    if q.favourite:
        favs = await svc.boards.favourites(owner)
        only = favs if only is None else only & favs
    return only


def job_filter(q: GalleryQuery, only: frozenset[str] | None = None) -> JobFilter:
    """The store's filter for ``q`` (InvalidRequest for a bad value)."""
    sort = _sort(q.sort or "newest")
    since, until = _when(q.since, "since"), _when(q.until, "until", end_of_day=True)
    if since is not None and until is not None and since >= until:
        raise InvalidRequest(f"since ({q.since}) must be before until ({q.until})")
    low, high = _usd(q.cost_min, "cost_min"), _usd(q.cost_max, "cost_max")
    if low is not None and high is not None and low > high:
        raise InvalidRequest(f"cost_min ({q.cost_min}) is more than cost_max ({q.cost_max})")
    return JobFilter(
        provider=_name(q.provider, "provider"),
        created_from=since,
        created_to=until,
        cost_min=low,
        cost_max=high,
        ids=only,
        sort=sort,
        after=_cursor(q.cursor, sort),
    )


async def gallery_page(svc: Services, q: GalleryQuery, *, caller: Caller = Caller()) -> GalleryPage:
    """A page of the gallery with the caller's favourites and boards of each job on it."""
    if not 1 <= q.limit <= 100:
        raise InvalidRequest(f"limit {q.limit} is out of range: send 1 to 100")
    owner = owner_of(caller.key_id)
    where = job_filter(q)  # checked before anything is read
    model, status = _name(q.model, "model"), _status(q.status)
    where = dataclasses.replace(where, ids=await _only(svc, owner, q))
    if where.ids is not None and not where.ids:
        return GalleryPage([], None)
    found = await svc.store.list_jobs(
        limit=q.limit + 1,
        model=model,
        query=q.q or None,
        group=q.group or None,
        status=status,
        where=where,
    )
    page = found[: q.limit]
    ids = [j.id for j in page]
    return GalleryPage(
        page,
        _cursor_of(page[-1], where.sort) if len(found) > q.limit else None,
        await svc.boards.favourites(owner, ids),
        await svc.boards.boards_of(owner, ids),
    )


def selection(ids: Sequence[str]) -> list[str]:
    """The job ids of a bulk call, each once, in order (InvalidRequest when unusable)."""
    if not ids:
        raise InvalidRequest("select at least one generation: send ids as a list of gen_… ids")
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_SELECTION:
        raise InvalidRequest(
            f"{len(unique)} generations selected; at most {MAX_SELECTION} per call: split it"
        )
    bad = [i for i in unique if not is_job_id(i)]
    if bad:
        raise InvalidRequest(f"not generation ids: {', '.join(map(repr, bad[:5]))}")
    return unique


async def existing(svc: Services, ids: Sequence[str]) -> list[str]:
    """The selected ids, checked: NotFound names those that are no generation."""
    wanted = selection(ids)
    found = await svc.store.list_jobs(limit=len(wanted), where=JobFilter(ids=frozenset(wanted)))
    missing = set(wanted) - {j.id for j in found}
    if missing:
        raise NotFound(f"no generation with id {', '.join(sorted(missing)[:5])}")
    return wanted


@dataclass(frozen=True, slots=True)
class BulkDeletion:
    deleted: list[str]  # gone now (also those an earlier call deleted)
    not_found: list[str]  # never existed
    refused: dict[str, str]  # id -> why (another key's, still running)


async def delete_many(
    svc: Services, ids: Sequence[str], *, caller: Caller = Caller()
) -> BulkDeletion:
    """Delete each selected generation as ``DELETE /v1/generations/{id}`` does: a shared image
    stays while any other generation still uses it; ledger entries stay. Idempotent: deleting
    again reports it deleted. Another key's or a running generation is refused, not the call."""
    deleted: list[str] = []
    missing: list[str] = []
    refused: dict[str, str] = {}
    for job_id in selection(ids):
        try:
            await delete(svc, job_id, caller=caller)
        except NotFound:
            missing.append(job_id)
        except (Forbidden, Conflict) as exc:
            refused[job_id] = exc.detail
        else:
            deleted.append(job_id)
    if deleted:
        await svc.boards.forget_jobs(deleted)
    return BulkDeletion(deleted, missing, refused)


async def mark_favourites(
    svc: Services, ids: Collection[str], on: bool, *, caller: Caller = Caller()
) -> int:
    """Mark (only generations that exist: NotFound names the others) or unmark the caller's
    favourites; how many changed."""
    chosen = await existing(svc, list(ids)) if on else selection(list(ids))
    return await svc.boards.set_favourite(owner_of(caller.key_id), chosen, on)
