"""Benchmark (not a test): jobs/s end to end on the scaled-out shape, 1 / 2 / 4 worker processes.

Real PostgreSQL (jobs + SAQ), Redis and SeaweedFS on loopback (tests/support/cluster.py), the
zero-latency preview provider (it draws the picture in the worker: that CPU is the "provider"),
and for each worker count two measurements:

* ``drain``: N jobs are queued through the API first, then W workers start; rate = N / (last
  ``finished_at`` - first ``submitted_at``) from the job rows — what the workers sustain;
* ``e2e``:   W workers running, N jobs POSTed through 2 API processes (32 in flight); rate =
  N / (time from the first POST until every job succeeded) — what a client sees.

It also counts, per job, what the capacity model in docs/scaling.md needs: PostgreSQL
transactions, row writes (by table, SAQ's included), WAL bytes and table bytes; Redis commands and
PUBLISHes; S3 objects and bytes.

    PYTHONPATH=. .venv/bin/python bench/scale_workers.py [--jobs 300] [--workers 1,2,4]
        [--size 256x256] [--modes drain,e2e]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from tests.support.cluster import Cluster, ClusterSpec

TABLES = [
    "jobs",
    "job_events",
    "images",
    "ledger_entries",
    "budget_reservations",
    "saq_jobs",
    "saq_stats",
]


def pg_counters(c: Cluster) -> dict[str, float]:
    out: dict[str, float] = {}
    row = c.sql(
        "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') FROM pg_stat_database "
        f"WHERE datname = '{c.database}'"
    ).split("|")
    out["xact"], out["ins"], out["upd"], out["del"], out["wal"] = map(float, row)
    for line in c.sql(
        "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
    ).splitlines():
        name, n = line.split("|")
        out[f"t:{name}"] = float(n)
    return out


def _cpu_s(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (with ``children``: reaped and live children too)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        total += int(fields[13]) + int(fields[14])  # cutime, cstime (reaped children)
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    child = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(child[1]) == pid:
                    total += int(child[11]) + int(child[12])
    return total / tick


def cpu_by_role(c: Cluster) -> dict[str, float]:
    """CPU seconds so far: pixelpipe roles, and the servers (PostgreSQL with its backends)."""
    out: dict[str, float] = {}
    for role, servers in (("api", c.apis), ("worker", c.workers), ("sweeper", c.sweepers)):
        out[role] = sum(_cpu_s(s.proc.pid) for s in servers if s.proc is not None)
    for name, server in (("postgres", c.pg), ("redis", c.redis), ("seaweedfs", c.s3)):
        proc = server._proc
        out[name] = _cpu_s(proc.pid, children=name == "postgres") if proc else 0.0
    return out


def table_bytes(c: Cluster) -> dict[str, int]:
    sizes = {}
    for t in TABLES:
        sizes[t] = int(c.sql(f"SELECT coalesce(pg_total_relation_size(to_regclass('{t}')), 0)"))
    return sizes


def redis_counters(c: Cluster) -> dict[str, float]:
    r = redis.Redis.from_url(c.redis.url)
    try:
        stats = r.info("stats")
        cmd = r.info("commandstats")
    finally:
        r.close()
    return {
        "commands": float(stats["total_commands_processed"]),
        "publish": float(cmd.get("cmdstat_publish", {}).get("calls", 0)),
        "evalsha": float(cmd.get("cmdstat_evalsha", {}).get("calls", 0)),
    }


def s3_usage(c: Cluster) -> tuple[int, int]:
    import obstore

    n = size = 0
    for batch in obstore.list(c.s3.raw_store(), prefix="images/"):
        for obj in batch:
            n += 1
            size += int(obj["size"])
    return n, size


async def submit_all(urls: list[str], n: int, size: str, tag: str) -> float:
    """POST n distinct jobs round-robin over the API processes, 32 in flight; returns seconds."""
    sem = asyncio.Semaphore(32)
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> None:
            body = {"prompt": f"bench {tag} {i}", "model": "preview", "seed": i, "size": size}
            async with sem:
                r = await client.post(f"{urls[i % len(urls)]}/v1/generations", json=body)
                r.raise_for_status()

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.monotonic() - t0


def wait_succeeded(c: Cluster, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while c.scalar("SELECT count(*) FROM jobs WHERE status = 'succeeded'") < n:
        if time.monotonic() > deadline:
            raise TimeoutError(c.sql("SELECT status, count(*) FROM jobs GROUP BY status"))
        time.sleep(0.1)


def run_one(workdir: Path, workers: int, n: int, size: str, mode: str) -> dict[str, Any]:
    apis = 2 if mode == "e2e" else 1
    spec = ClusterSpec(apis=apis, workers=workers if mode == "e2e" else 0, sweepers=1, lease_s=30.0)
    with Cluster(workdir, spec) as c:
        urls = [a.url for a in c.apis]
        asyncio.run(submit_all(urls, 5, size, "warm"))  # first requests: imports, pools
        if mode == "e2e":
            wait_succeeded(c, 5)
            time.sleep(1.5)
        pg0, r0, cpu0 = pg_counters(c), redis_counters(c), cpu_by_role(c)
        t0 = time.monotonic()
        post_s = asyncio.run(submit_all(urls, n, size, f"{mode}-{workers}"))
        if mode == "drain":  # all queued; now the workers start and drain the backlog
            for _ in range(workers):
                c.add("worker", wait=False)
        wait_succeeded(c, n + 5)
        wall = time.monotonic() - t0
        first, last = map(
            float,
            c.sql(
                "SELECT min(submitted_at), max(finished_at) FROM jobs "
                f"WHERE request->>'prompt' LIKE 'bench {mode}-%'"
            ).split("|"),
        )
        time.sleep(2.0)  # backends flush their statistics about once a second
        pg1, r1, cpu1 = pg_counters(c), redis_counters(c), cpu_by_role(c)
        objects, stored = s3_usage(c)
        sizes = table_bytes(c)
        lat = [
            float(x)
            for x in c.sql(
                "SELECT finished_at - created_at FROM jobs "
                f"WHERE request->>'prompt' LIKE 'bench {mode}-%'"
            ).split()
        ]
    total = n + 5
    counted = n if mode == "e2e" else total  # drain: the warm-up jobs ran inside the window
    per_job = {k: (pg1.get(k, 0) - pg0.get(k, 0)) / counted for k in pg1}
    return {
        "mode": mode,
        "workers": workers,
        "jobs": n,
        "size": size,
        "jobs_per_s": n / (wall if mode == "e2e" else (last - first)),
        "post_s": post_s,
        "wall_s": wall,
        "latency_p50_s": statistics.median(lat),
        "latency_p95_s": statistics.quantiles(lat, n=20)[-1],
        "pg_xact_per_job": per_job["xact"],
        "pg_row_writes_per_job": per_job["ins"] + per_job["upd"] + per_job["del"],
        "pg_wal_bytes_per_job": per_job["wal"],
        "pg_writes_by_table": {
            k[2:]: round(v, 2) for k, v in per_job.items() if k.startswith("t:") and v
        },
        "pg_table_bytes_per_job": {t: round(b / total) for t, b in sizes.items() if b},
        "redis_commands_per_job": (r1["commands"] - r0["commands"]) / counted,
        "redis_publish_per_job": (r1["publish"] - r0["publish"]) / counted,
        # CPU ms per job by process role (drain: workers started inside the window, so their
        # start-up is in it; read the e2e rows for per-job CPU)
        "cpu_ms_per_job": {
            k: round((cpu1[k] - cpu0.get(k, 0.0)) * 1000 / counted, 1) for k in cpu1
        },
        "s3_objects_per_job": objects / total,
        "s3_bytes_per_job": stored / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--modes", default="drain,e2e")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; {args.jobs} jobs of {args.size}, "
        "preview provider with zero latency"
    )
    results = []
    base = Path(tempfile.mkdtemp(prefix="pixelpipe-bench-"))
    try:
        for mode in args.modes.split(","):
            for w in (int(x) for x in args.workers.split(",")):
                res = run_one(base / f"{mode}-{w}", w, args.jobs, args.size, mode)
                results.append(res)
                print(
                    f"{mode:>5} workers={w}: {res['jobs_per_s']:6.1f} jobs/s  "
                    f"(p50 latency {res['latency_p50_s']:.2f}s, p95 {res['latency_p95_s']:.2f}s; "
                    f"PG {res['pg_xact_per_job']:.1f} xact, "
                    f"{res['pg_row_writes_per_job']:.1f} row writes, "
                    f"{res['pg_wal_bytes_per_job'] / 1024:.1f} KiB WAL per job; "
                    f"Redis {res['redis_commands_per_job']:.1f} cmds/job; "
                    f"S3 {res['s3_bytes_per_job'] / 1024:.1f} KiB/job)",
                    flush=True,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    detail = results[-1]
    print("per-table row writes per job:", json.dumps(detail["pg_writes_by_table"]))
    print("table bytes per job:", json.dumps(detail["pg_table_bytes_per_job"]))
    for res in results:
        print(f"CPU ms per job, {res['mode']} workers={res['workers']}:", res["cpu_ms_per_job"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
