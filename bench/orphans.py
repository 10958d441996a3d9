"""Provider runs created vs. runs in the ledger, with ``pixelpipe serve`` SIGKILLed every 3–8 s.

A fake Replicate (``pixelpipe fake-providers``, its own process) answers each create after a
network delay (``--answer-delay``), so some crashes land while a create is in flight and its run's
id is lost. Webhooks are on (``PIXELPIPE_PUBLIC_URL``) and retried by the fake for about a minute,
as Replicate does. Jobs are submitted with idempotency keys (a submit lost to a crash is sent
again, not doubled). At the end every run the fake made must be in the ledger exactly once.

    .venv/bin/python bench/orphans.py [--jobs 300] [--min-kills 5] [--answer-delay 0.3]

Prints the figures; exits 1 when created != ledgered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.serve import Server, free_port, start_fake_providers, stop_pid

from pixelpipe.fakes.server import fake_env

TERMINAL = {"succeeded", "failed", "canceled"}


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data = Path(tempfile.mkdtemp(prefix="pixelpipe-orphans-"))
        self.ids: dict[int, str] = {}
        self.kills = 0
        self.submitted = asyncio.Event()

    async def submit_all(self, url: str) -> None:
        sem = asyncio.Semaphore(self.args.concurrency)
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(i: int) -> None:
                body = {
                    "prompt": f"a lighthouse at dusk, study {i} {self.data.name}",
                    "model": "flux-schnell",
                    "provider": "replicate",
                    "seed": i,
                }
                async with sem:
                    while True:
                        try:
                            r = await client.post(
                                f"{url}/v1/generations",
                                json=body,
                                headers={"Idempotency-Key": f"orphans-{i}"},
                            )
                            if r.status_code in (200, 202):
                                self.ids[i] = r.json()["id"]
                                return
                        except (httpx.HTTPError, OSError):
                            pass
                        await asyncio.sleep(0.2)  # the server is down (a crash): send again

            await asyncio.gather(*(one(i) for i in range(self.args.jobs)))
        self.submitted.set()

    async def crash_loop(self, srv: Server) -> None:
        rng = random.Random(self.args.seed)
        while not self.submitted.is_set() or self.kills < self.args.min_kills:
            await asyncio.sleep(rng.uniform(3.0, 8.0))
            srv.kill()
            self.kills += 1
            await asyncio.to_thread(srv.start, timeout_s=300)  # a loaded machine imports slowly

    def ledger(self) -> list[sqlite3.Row]:
        con = sqlite3.connect(self.data / "pixelpipe.db", timeout=30)
        con.row_factory = sqlite3.Row
        try:
            return list(con.execute("SELECT * FROM ledger_entries WHERE kind = 'attempt'"))
        finally:
            con.close()

    def statuses(self) -> dict[str, int]:
        con = sqlite3.connect(self.data / "pixelpipe.db", timeout=30)
        try:
            rows = con.execute("SELECT status, count(*) FROM jobs GROUP BY status")
            return {str(s): int(n) for s, n in rows}
        finally:
            con.close()


def control(fakes: str, **changes: Any) -> None:
    httpx.post(f"{fakes}/replicate/_control", json=changes, timeout=5).raise_for_status()


def creates(fakes: str) -> int:
    return int(httpx.get(f"{fakes}/replicate/_stats", timeout=5).json()["creates_total"])


async def main(args: argparse.Namespace) -> int:
    run = Run(args)
    fakes_proc, fakes = start_fake_providers(run.data / "fakes.log")
    control(
        fakes,
        latency_s=args.latency,
        create_answer_delay_s=args.answer_delay,
        webhook_retry_delays_s=[1.0, 2.0, 4.0, 8.0, 15.0, 30.0],
    )
    port = free_port()
    env = {
        **fake_env(fakes),
        "PIXELPIPE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PIXELPIPE_WEBHOOK_DEADLINE_S": "3",
        "PIXELPIPE_SWEEP_INTERVAL_S": "0.5",
        "PIXELPIPE_LEASE_S": "3",
        "PIXELPIPE_LOG_LEVEL": args.log_level,
    }
    srv = Server(run.data, env, port=port)
    started = time.monotonic()
    try:
        srv.start(timeout_s=120)
        await asyncio.gather(run.submit_all(srv.url), run.crash_loop(srv))
        deadline = time.monotonic() + args.settle_s
        while time.monotonic() < deadline:  # every job finished, every late webhook in
            done = sum(n for s, n in run.statuses().items() if s in TERMINAL)
            seen = {r["provider_job_id"] for r in run.ledger() if r["provider_job_id"]}
            if done == args.jobs and len(seen) >= creates(fakes):
                break
            await asyncio.sleep(1.0)
        rows = run.ledger()
        made = creates(fakes)
        hooks = httpx.get(f"{fakes}/replicate/_stats", timeout=5).json().get("webhooks")
    finally:
        srv.stop()
        stop_pid(fakes_proc)
    runs = [r["provider_job_id"] for r in rows if r["provider_job_id"]]
    states = {
        s: sum(1 for r in rows if r["state"] == s) for s in ("billed", "unconfirmed", "pending")
    }
    print(f"machine: {os.cpu_count()} CPUs; {time.monotonic() - started:.0f} s")
    print(f"jobs: {args.jobs} submitted, statuses {run.statuses()}")
    print(f"SIGKILLs: {run.kills}; fake's webhook deliveries: {hooks}")
    print(f"provider runs created (fake Replicate): {made}")
    print(f"runs in the ledger (distinct run ids):  {len(set(runs))} ({len(runs)} rows)")
    print(f"ledger attempt rows by state: {states}")
    print(f"unconfirmed rows without a run id (may have been billed): {states['unconfirmed']}")
    ok = made == len(set(runs)) == len(runs)
    print("created == ledgered" if ok else "MISMATCH: created != ledgered")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--min-kills", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=1.0, help="fake run time, s")
    parser.add_argument("--answer-delay", type=float, default=0.3, help="create answer delay, s")
    parser.add_argument("--settle-s", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log-level", default="WARNING", help="server log level")
    sys.exit(asyncio.run(main(parser.parse_args())))
