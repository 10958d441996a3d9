"""The gallery's filters and sort orders on the job list (``list_jobs(where=…)``), run against
every job store: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import time

from pixelpipe.jobs.listing import JobFilter, sort_key
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.store import JobStore
from tests.jobs.conftest import notifier, store  # noqa: F401 - the fixtures, every store

from .seed import DAY, finished_job, seed

T0 = time.time() - 10 * DAY


async def _five(store: JobStore) -> list[Job]:  # noqa: F811
    specs = [
        ("a red fox", "preview", "preview", 40_000),
        ("a blue fox", "flux-dev", "replicate", 25_000),
        ("a cat", "flux-dev", "fal", None),
        ("a dog", "preview", "preview", 0),
        ("a cow", "flux-dev", "replicate", 25_000),
    ]
    jobs = []
    for day, (prompt, model, provider, cost) in enumerate(specs):
        job = finished_job(prompt, at=T0 + day * DAY, model=model, provider=provider, cost=cost)
        jobs.append(await seed(store, job))
    return jobs


def ids(jobs: list[Job]) -> list[str]:
    return [j.id for j in jobs]


async def test_filters_by_provider_date_cost_and_ids(store: JobStore) -> None:  # noqa: F811
    j = await _five(store)
    assert ids(await store.list_jobs(where=JobFilter(provider="replicate"))) == [j[4].id, j[1].id]
    window = JobFilter(created_from=T0 + DAY, created_to=T0 + 3 * DAY)
    assert ids(await store.list_jobs(where=window)) == [j[2].id, j[1].id]
    priced = JobFilter(cost_min=1, cost_max=30_000)
    assert ids(await store.list_jobs(where=priced)) == [j[4].id, j[1].id]
    assert ids(await store.list_jobs(where=JobFilter(cost_max=0))) == [j[3].id]  # unpriced: out
    only = JobFilter(ids=frozenset({j[0].id, j[3].id, "gen_0000000000000000000000zzzz"}))
    assert ids(await store.list_jobs(where=only)) == [j[3].id, j[0].id]
    both = JobFilter(provider="replicate", cost_min=25_000)
    assert ids(await store.list_jobs(model="flux-dev", where=both, query="cow")) == [j[4].id]
    assert await store.list_jobs(where=JobFilter(ids=frozenset())) == []


async def test_sort_orders_and_their_cursors(store: JobStore) -> None:  # noqa: F811
    j = await _five(store)
    assert ids(await store.list_jobs(where=JobFilter(sort="oldest"))) == ids(j)
    by_cost = [j[0], j[4], j[1], j[3], j[2]]  # ties by id, newest first; no cost (-1) last
    assert ids(await store.list_jobs(where=JobFilter(sort="cost_desc"))) == ids(by_cost)
    assert ids(await store.list_jobs(where=JobFilter(sort="cost_asc"))) == ids(by_cost[::-1])
    for sort, whole in (("cost_desc", by_cost), ("cost_asc", by_cost[::-1]), ("oldest", j)):
        pages: list[Job] = []
        after = None
        while True:
            where = JobFilter(sort=sort, after=after)  # type: ignore[arg-type]
            page = await store.list_jobs(limit=2, where=where)
            pages += page
            if len(page) < 2:
                break
            after = sort_key(page[-1], sort)  # type: ignore[arg-type]
        assert ids(pages) == ids(whole), sort


async def test_statuses_filter_with_the_rest(store: JobStore) -> None:  # noqa: F811
    ok = await seed(store, finished_job("fine", at=T0))
    failed = await seed(store, finished_job("broke", at=T0 + 1, status=JobStatus.FAILED))
    assert ids(await store.list_jobs(status="failed", where=JobFilter(sort="oldest"))) == [
        failed.id
    ]
    assert ids(await store.list_jobs(where=JobFilter(sort="oldest"))) == [ok.id, failed.id]


async def test_a_set_of_ids_larger_than_a_statement_binds(store: JobStore) -> None:  # noqa: F811
    j = await _five(store)
    many = frozenset({j[1].id, j[3].id, *(f"gen_{i:026d}" for i in range(40_000))})
    assert ids(await store.list_jobs(where=JobFilter(ids=many))) == [j[3].id, j[1].id]
    assert ids(await store.list_jobs(where=JobFilter(ids=many, sort="cost_desc"))) == [
        j[1].id,
        j[3].id,
    ]
