"""Fault injection end to end: hundreds of jobs through ``pixelpipe serve`` while everything breaks.

Real processes, real sockets: ``pixelpipe serve`` (subprocess, SQLite + local disk, webhooks on)
talks to the fake Replicate, fal and OpenAI servers (a thread of this process) and to the offline
preview provider. While a client submits ``FAULT_JOBS`` generations (with Idempotency-Keys, retrying
whatever did not get an answer), an injector breaks things on a schedule:

* providers: 429 with Retry-After, 5xx, answers that hang past the client timeout, 200 with
  garbage bodies, content-policy and NSFW refusals, expired output URLs;
* webhooks: lost, duplicated, stale ones delivered after the terminal one (out of order);
* the preview provider fails ``PIXELPIPE_PREVIEW_FAILURE_RATE`` of its submissions;
* storage: the image directory disappears (replaced by a file) for a while;
* database: another process holds the SQLite write lock longer than the busy timeout;
* the server: SIGKILLed ``KILLS`` times at arbitrary moments and restarted on the same port.

Then no more faults; the test waits for the sweeper deadline and checks, from the database and the
disk: no accepted job lost, none left non-terminal, no image stored twice, no ledger entry twice
(per attempt, and per provider run), every succeeded job's image on disk. The figures are printed
(and written to ``$PIXELPIPE_FAULT_REPORT`` when set; docs/reliability.md quotes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelpipe.fakes.server import FakeProviders, fake_env, serve_app
from tests.support.serve import Server, free_port

pytestmark = pytest.mark.slow

FAULT_JOBS = int(os.environ.get("PIXELPIPE_FAULT_JOBS", "500"))
KILLS = int(os.environ.get("PIXELPIPE_FAULT_KILLS", "6"))
SUBMIT_S = float(os.environ.get("PIXELPIPE_FAULT_SUBMIT_S", "60"))
JOB_DEADLINE_S = 90.0
LATE_JOBS = 10  # submitted around the last database lock
TERMINAL = ("succeeded", "failed", "canceled")
FAKES = ("replicate", "fal", "openai")
COUNTERS = (
    "rate_limit_next",
    "error_next",
    "hang_next",
    "garbage_next",
    "content_policy_next",
    "nsfw_next",
    "lose_webhook_next",
)


# --- the fakes, on their own event loop ----------------------------------------------------------


class FakesThread:
    def __init__(self) -> None:
        self.fakes = FakeProviders(
            latency_s=0.2, hang_s=3.0, webhook_retry_delays_s=[0.3, 1.0, 2.0]
        )
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fakes", daemon=True)

    def __enter__(self) -> FakesThread:
        self._thread.start()
        assert self._ready.wait(15), "fakes did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve_app(self.fakes.app) as url:
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` on the fakes' loop (their state is not thread-safe)."""

        async def wrapped() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(10)

    def fake(self, name: str) -> Any:
        return getattr(self.fakes, name)


# --- bookkeeping ---------------------------------------------------------------------------------


@dataclass
class Tally:
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> job id
    idem_conflicts: int = 0  # the same key answered with two different job ids
    http_status: Counter[int] = field(default_factory=Counter)
    http_5xx_codes: Counter[str] = field(default_factory=Counter)
    connection_errors: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    restarts_s: list[float] = field(default_factory=list)
    failed_starts: int = 0
    timeline: list[tuple[float, str]] = field(default_factory=list)


class Injector:
    """Sets fault counters on the fakes and books how many were consumed."""

    def __init__(self, fakes: FakesThread, tally: Tally, rng: random.Random) -> None:
        self.fakes = fakes
        self.tally = tally
        self.rng = rng
        self.outstanding: dict[tuple[str, str], int] = {}

    def tick(self, n: int) -> None:
        for name in FAKES:
            self.fakes.call(lambda name=name, n=n: self._tick_one(name, n))

    def _tick_one(self, name: str, n: int) -> None:
        b = self.fakes.fake(name).behaviour
        self._book(name, b)
        chances = {
            "rate_limit_next": 0.5,
            "error_next": 0.5,
            "hang_next": 0.2,
            "garbage_next": 0.3,
            "content_policy_next": 0.08,
            "nsfw_next": 0.08,
            "lose_webhook_next": 0.0 if name == "openai" else 0.5,
        }
        for counter, p in chances.items():
            if self.rng.random() < p:
                setattr(b, counter, getattr(b, counter) + 1)
        b.error_status = self.rng.choice((500, 502, 503))
        if name != "openai":
            b.duplicate_webhooks = (n // 5) % 2 == 0
            b.out_of_order_webhooks = (n // 5) % 2 == 1
        if n % 23 == 11:
            self.fakes.fake(name).core.files.expire_all()
            self.tally.injected["expired_outputs_batch"] += 1
        for counter in COUNTERS:
            self.outstanding[(name, counter)] = getattr(b, counter)

    def _book(self, name: str, b: Any) -> None:
        for counter in COUNTERS:
            before = self.outstanding.get((name, counter), 0)
            self.tally.injected[counter] += max(0, before - getattr(b, counter))

    def calm(self) -> None:
        """No more faults; book what was consumed."""

        def one(name: str) -> None:
            b = self.fakes.fake(name).behaviour
            self._book(name, b)
            for counter in COUNTERS:
                setattr(b, counter, 0)
                self.outstanding[(name, counter)] = 0
            b.duplicate_webhooks = b.out_of_order_webhooks = False

        for name in FAKES:
            self.fakes.call(lambda name=name: one(name))


# --- faults outside the providers ----------------------------------------------------------------


@contextlib.contextmanager
def storage_outage(images: Path) -> Iterator[None]:
    """The image directory is gone: every put fails until it is back."""
    aside = images.with_name("images.down")
    images.mkdir(parents=True, exist_ok=True)
    images.rename(aside)
    images.write_bytes(b"not a directory")
    try:
        yield
    finally:
        images.unlink()
        if images.exists():  # recreated in the instant between unlink and rename: merge
            for p in images.rglob("*"):
                if p.is_file():
                    dest = aside / p.relative_to(images)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    p.replace(dest)
            import shutil

            shutil.rmtree(images)
        aside.rename(images)


def hold_write_lock(db: Path, seconds: float) -> None:
    """Another process-like writer holds the SQLite write lock past the 5 s busy timeout."""
    con = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        con.execute("ROLLBACK")
    finally:
        con.close()


# --- the client ------------------------------------------------------------------------------------


def request_body(i: int, rng: random.Random, earlier: list[dict[str, Any]]) -> dict[str, Any]:
    r = rng.random()
    tag = f"fault run {i} {secrets.token_hex(3)}"
    if r < 0.08 and earlier:  # the same request again: cache hit or single-flight attach
        return dict(rng.choice(earlier))
    if r < 0.55:
        size = rng.choice(("64x64", "96x96", "128x128"))
        body = {"prompt": tag, "model": "preview", "size": size}
    elif r < 0.72:
        body = {"prompt": tag, "model": "flux-schnell", "aspect_ratio": "21:9", "steps": 1}
    elif r < 0.80:
        body = {"prompt": tag, "model": "flux-dev", "aspect_ratio": "21:9", "steps": 1}
    elif r < 0.93:
        body = {"prompt": tag, "model": "gpt-image-1", "quality": "low"}
    else:
        body = {"prompt": tag, "model": "dall-e-3"}
    if str(body["model"]).startswith("flux"):
        body["provider"] = rng.choice(("replicate", "fal"))  # preferred; failover still applies
    body["seed"] = rng.randrange(2**32)
    return body


async def submit(
    client: httpx.AsyncClient, srv: list[Server], body: dict[str, Any], tally: Tally
) -> None:
    key = secrets.token_hex(8)
    while True:
        try:
            r = await client.post(
                f"{srv[0].url}/v1/generations", json=body, headers={"Idempotency-Key": key}
            )
        except httpx.HTTPError:
            tally.connection_errors += 1
            await asyncio.sleep(0.3)
            continue
        tally.http_status[r.status_code] += 1
        if r.status_code >= 500:
            with contextlib.suppress(ValueError):
                tally.http_5xx_codes[str(r.json().get("code"))] += 1
        if r.status_code in (200, 202):
            job_id = r.json()["id"]
            seen = tally.accepted.setdefault(key, job_id)
            tally.idem_conflicts += seen != job_id
            # ask again with the same key: the same job must come back
            with contextlib.suppress(httpx.HTTPError):  # the server may be down right now
                again = await client.post(
                    f"{srv[0].url}/v1/generations", json=body, headers={"Idempotency-Key": key}
                )
                if again.status_code in (200, 202) and again.json()["id"] != job_id:
                    tally.idem_conflicts += 1
                    print("IDEM CONFLICT", key, job_id, again.json()["id"], body)
            return
        if r.status_code < 500 and r.status_code != 429:
            raise AssertionError(f"request refused: {r.status_code} {r.text}")
        await asyncio.sleep(float(r.headers.get("retry-after", "0.3")))


# --- checks ----------------------------------------------------------------------------------------


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return list(con.execute(sql, args))
    finally:
        con.close()


def non_terminal(db: Path, ids: list[str]) -> int:
    rows = query(db, "SELECT id, status FROM jobs")
    status = dict(rows)
    return sum(1 for i in ids if status.get(i) not in TERMINAL)


def figures(data: Path, tally: Tally, fakes: FakesThread) -> dict[str, Any]:
    db = data / "pixelpipe.db"
    ids = sorted(set(tally.accepted.values()))
    status = dict(query(db, "SELECT id, status FROM jobs"))
    lost = [i for i in ids if i not in status]
    pending = [i for i in ids if status.get(i) not in TERMINAL]
    all_jobs = query(db, "SELECT id, status, error_code, cached, provider, storage_key FROM jobs")
    outcome = Counter(
        f"{s}:{e}" if s == "failed" else ("succeeded (cache hit)" if c else s)
        for _, s, e, c, _, _ in all_jobs
    )
    dup_ledger_attempt = query(
        db,
        "SELECT job_id, attempt, kind, count(*) FROM ledger_entries "
        "GROUP BY job_id, attempt, kind HAVING count(*) > 1",
    )
    dup_ledger_run = query(
        db,
        "SELECT provider, provider_job_id, count(*) FROM ledger_entries WHERE kind = 'attempt' "
        "AND provider_job_id != '' "
        "GROUP BY provider, provider_job_id HAVING count(*) > 1",
    )
    image_rows = query(db, "SELECT content_key, storage_key, thumb_key FROM images")
    referenced = {k for _, s, t in image_rows for k in (s, t) if k}
    root = data / "images"
    files = [p for p in root.rglob("*") if p.is_file()]
    visible = {p.relative_to(root).as_posix() for p in files if not p.name.startswith(".")}
    temp_files = [p for p in files if p.name.startswith(".") and p.name.endswith(".tmp")]
    per_object = Counter(
        (p.parts[0] == "thumbs", p.name.split(".")[0]) for p in (Path(v) for v in visible)
    )
    duplicate_objects = sum(n - 1 for n in per_object.values() if n > 1)
    image_jobs = query(db, "SELECT j.status FROM images i JOIN jobs j ON j.id = i.job_id")
    stored_for_unsucceeded = sum(1 for (st,) in image_jobs if st != "succeeded")
    succeeded = [(i, sk) for i, s, _, _, _, sk in all_jobs if s == "succeeded"]
    missing_image = [i for i, sk in succeeded if not sk or sk not in visible]
    distinct_keys = len(
        {r[0] for r in query(db, "SELECT content_key FROM jobs WHERE status='succeeded'")}
    )
    unbilled = query(
        db,
        "SELECT j.id FROM jobs j WHERE j.status = 'succeeded' AND j.cached = 0 AND NOT EXISTS "
        "(SELECT 1 FROM ledger_entries l WHERE l.job_id = j.id AND l.kind = 'attempt' "
        "AND l.provider_job_id = j.provider_job_id)",
    )
    billed_runs = query(
        db,
        "SELECT provider, count(*) FROM ledger_entries WHERE kind = 'attempt' "
        "AND provider_job_id != '' GROUP BY provider",
    )
    multi_run = query(
        db,
        "SELECT count(*) FROM (SELECT job_id FROM ledger_entries WHERE kind = 'attempt' "
        "AND provider_job_id != '' GROUP BY job_id HAVING count(*) > 1)",
    )[0][0]
    reservations_left = query(
        db,
        "SELECT count(*) FROM budget_reservations r JOIN jobs j ON j.id = r.job_id "
        "WHERE j.status IN ('succeeded', 'failed', 'canceled')",
    )[0][0]
    events = Counter(
        dict(
            query(
                db,
                "SELECT CASE WHEN type = 'status' AND data LIKE '%recovered%' THEN 'recovered' "
                "ELSE type END, count(*) FROM job_events GROUP BY 1",
            )
        )
    )
    faulted_jobs = query(
        db,
        "SELECT count(DISTINCT job_id) FROM job_events WHERE type IN ('retry', 'sweeper') "
        "OR (type = 'status' AND (data LIKE '%recovered%' OR data LIKE '%\"error\"%'))",
    )[0][0]
    preview_failures = query(
        db,
        "SELECT count(*) FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE e.type = 'retry' "
        "AND e.data LIKE '%injected transient failure%'",
    )[0][0]
    stats = {n: fakes.call(lambda n=n: fakes.fake(n).core.stats.as_dict()) for n in FAKES}
    injected = dict(tally.injected)
    injected["preview_transient_failures"] = preview_failures
    injected["webhooks_lost"] = sum(s["webhooks"].get("lost", 0) for s in stats.values())
    injected["webhooks_duplicated"] = sum(
        s["webhooks"].get("duplicates", 0) for s in stats.values()
    )
    injected["webhooks_out_of_order"] = sum(s["webhooks"].get("stale", 0) for s in stats.values())
    injected["garbage_answers"] = sum(s["calls"].get("garbage", 0) for s in stats.values())
    injected.pop("garbage_next", None)
    provider_runs = {n: s["creates_total"] for n, s in stats.items()}
    billed = dict(billed_runs)
    return {
        "jobs_accepted": len(ids),
        "requests": len(tally.accepted),
        "jobs_in_db": len(all_jobs),
        "lost": len(lost),
        "non_terminal_after_deadline": len(pending),
        "idempotency_conflicts": tally.idem_conflicts,
        "duplicate_objects": duplicate_objects,
        "stored_objects": len(visible),
        "image_rows": len(image_rows),
        "distinct_succeeded_content_keys": distinct_keys,
        "images_whose_first_job_did_not_succeed": stored_for_unsucceeded,
        "orphan_files": len(visible - referenced),
        "temp_files_left": len(temp_files),
        "duplicate_ledger_entries": len(dup_ledger_attempt) + len(dup_ledger_run),
        "succeeded_without_image": len(missing_image),
        "succeeded_unbilled": len(unbilled),
        "reservations_left_on_finished_jobs": reservations_left,
        "jobs_billed_for_2plus_runs": multi_run,
        "outcomes": dict(sorted(outcome.items())),
        "injected": dict(sorted(injected.items())),
        "jobs_with_visible_faults": faulted_jobs,
        "events": dict(sorted(events.items())),
        "provider_runs_started": provider_runs,
        "provider_runs_billed": billed,
        "http_status": dict(sorted(tally.http_status.items())),
        "http_5xx_codes": dict(tally.http_5xx_codes),
        "connection_errors_retried": tally.connection_errors,
        "kills": tally.kills,
        "restart_s": [round(s, 2) for s in tally.restarts_s],
        "failed_starts": tally.failed_starts,
        "timeline_s": tally.timeline,
    }


# --- the run ---------------------------------------------------------------------------------------


def start(data: Path, env: dict[str, str], port: int, tally: Tally) -> Server:
    for _ in range(5):
        try:
            return Server(data, env, port=port).start(timeout_s=90)
        except RuntimeError:
            tally.failed_starts += 1
            time.sleep(1)
    raise RuntimeError("pixelpipe serve did not come back")


async def run(data: Path, fakes: FakesThread, rng: random.Random) -> tuple[Tally, float]:
    tally = Tally()
    port = free_port()
    env = {
        **fake_env(fakes.url),
        "PIXELPIPE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PIXELPIPE_LEASE_S": "2",
        "PIXELPIPE_WEBHOOK_DEADLINE_S": "2",
        "PIXELPIPE_SWEEP_INTERVAL_S": "0.5",
        "PIXELPIPE_JOB_DEADLINE_S": str(JOB_DEADLINE_S),
        "PIXELPIPE_PROVIDER_TIMEOUT_S": "2",
        "PIXELPIPE_PREVIEW_FAILURE_RATE": "0.3",
        "PIXELPIPE_PREVIEW_LATENCY_MS": "150",
        "PIXELPIPE_LOG_LEVEL": "ERROR",
        # every SIGKILL here ends each step in flight, and a 6 s write lock outlasts the 2 s
        # lease: a job caught by three of them would be quarantined as poison (docs/queue.md),
        # held for an operator, never failed at its deadline — by design, tested on its own
        # (tests/queue_steering); this test is about losing and duplicating nothing
        "PIXELPIPE_QUEUE_POISON_AFTER": "0",
    }
    srv = [await asyncio.to_thread(start, data, env, port, tally)]
    injector = Injector(fakes, tally, rng)
    db = data / "pixelpipe.db"
    t0 = time.monotonic()
    kill_at = [SUBMIT_S * (k + 0.6) / (KILLS + 0.2) for k in range(KILLS)]
    storage_at = [SUBMIT_S * f for f in (0.1, 0.42, 0.74)]
    lock_at = [SUBMIT_S * 0.45]

    async def chaos() -> None:
        n = 0
        while time.monotonic() - t0 < SUBMIT_S or kill_at:
            now = time.monotonic() - t0
            injector.tick(n)
            if storage_at and now >= storage_at[0]:
                storage_at.pop(0)
                tally.timeline.append((round(now, 1), "storage outage 1.5 s"))
                with storage_outage(data / "images"):
                    tally.injected["storage_outages"] += 1
                    await asyncio.sleep(1.5)
            if lock_at and now >= lock_at[0]:
                lock_at.pop(0)
                tally.injected["db_write_lock_6s"] += 1
                tally.timeline.append((round(now, 1), "database write lock 6 s"))
                await asyncio.to_thread(hold_write_lock, db, 6.0)
            if kill_at and now >= kill_at[0]:
                kill_at.pop(0)
                srv[0].kill()
                tally.kills += 1
                tally.timeline.append((round(now, 1), "SIGKILL"))
                started = time.monotonic()
                srv[0] = await asyncio.to_thread(start, data, env, port, tally)
                tally.restarts_s.append(time.monotonic() - started)
            n += 1
            await asyncio.sleep(1.0)

    earlier: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:
        chaos_task = asyncio.create_task(chaos())
        tasks = []
        for i in range(FAULT_JOBS):
            await asyncio.sleep(max(0.0, t0 + i * SUBMIT_S / FAULT_JOBS - time.monotonic()))
            body = request_body(i, rng, earlier)
            earlier.append(body)
            tasks.append(asyncio.create_task(submit(client, srv, body, tally)))
        await asyncio.gather(*tasks)
        await chaos_task
        injector.calm()
        # one more lock after the last kill, with jobs in flight: the worker must live through it
        # without a restart (a dead worker shows up as timed_out jobs, asserted below)
        late = [
            asyncio.create_task(submit(client, srv, request_body(FAULT_JOBS + i, rng, []), tally))
            for i in range(LATE_JOBS)
        ]
        await asyncio.sleep(0.5)
        tally.injected["db_write_lock_6s"] += 1
        tally.timeline.append((round(time.monotonic() - t0, 1), "database write lock 6 s"))
        await asyncio.to_thread(hold_write_lock, db, 6.0)
        await asyncio.gather(*late)
        ids = sorted(set(tally.accepted.values()))
        deadline_at = max(r[0] for r in query(db, "SELECT max(deadline_at) FROM jobs"))
        until = time.time() + max(0.0, deadline_at - time.time()) + 3.0
        while time.time() < until and non_terminal(db, ids):
            await asyncio.sleep(0.5)
        # a sample of succeeded images is delivered through signed URLs
        sample = [r[0] for r in query(db, "SELECT id FROM jobs WHERE status='succeeded' LIMIT 15")]
        for job_id in sample:
            job = (await client.get(f"{srv[0].url}/v1/generations/{job_id}")).json()
            url = job["image"]["url"]
            img = await client.get(url if url.startswith("http") else srv[0].url + url)
            assert img.status_code == 200 and len(img.content) == job["image"]["bytes"], job_id
    srv[0].stop()
    return tally, time.monotonic() - t0


@pytest.mark.timeout(420)
def test_faults_lose_nothing_duplicate_nothing_leave_nothing_pending(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("PIXELPIPE_FAULT_SEED", "7")))
    data = tmp_path / "data"
    with FakesThread() as fakes:
        tally, wall = asyncio.run(run(data, fakes, rng))
        result = figures(data, tally, fakes)
    result["wall_s"] = round(wall, 1)
    print("\nFAULT INJECTION RESULT\n" + json.dumps(result, indent=2))
    report = os.environ.get("PIXELPIPE_FAULT_REPORT")
    if report:
        Path(report).write_text(json.dumps(result, indent=2))
    faults = sum(v for k, v in result["injected"].items() if not k.endswith("_batch"))
    assert result["requests"] == FAULT_JOBS + LATE_JOBS
    assert result["jobs_accepted"] >= min(FAULT_JOBS, 500) * 0.9  # some are duplicates by design
    assert tally.kills >= min(KILLS, 5)
    assert faults >= 0.2 * result["jobs_accepted"], result["injected"]
    assert result["lost"] == 0
    assert result["non_terminal_after_deadline"] == 0
    assert result["idempotency_conflicts"] == 0
    assert result["duplicate_objects"] == 0
    assert result["duplicate_ledger_entries"] == 0
    assert result["succeeded_without_image"] == 0
    assert result["succeeded_unbilled"] == 0
    assert result["reservations_left_on_finished_jobs"] == 0
    # nothing stalled until the deadline (a dead worker or a stuck lease would show up here)
    assert "failed:timed_out" not in result["outcomes"], result["outcomes"]
