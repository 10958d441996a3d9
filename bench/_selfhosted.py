"""Shared by the self-hosted benchmarks (bench/selfhosted_*.py): a real cog server (coglet, the
test predictor `tests/cog_predictor`, N slots) and a real `pixelpipe serve` (embedded defaults,
SQLite) whose catalog file names it, reached over HTTP. What the jobs and the ledger hold is read
from the server's SQLite file, read-only; what cog ran, from cog's own log."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers.cog import CogServer
from tests.support.serve import Server, free_port

FLUX_SCHNELL_S = 0.7  # what one FLUX schnell image takes on a GPU: the overhead's yardstick
STARTUP_S = 120.0  # imports + migrations on a busy 2-core machine
TERMINAL = ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class Backend:
    """One `[backends.<name>]` of the catalog file, with a model of its own (`bench-<name>`)."""

    name: str
    url: str
    slots: int = 1
    sleep_s: float = 0.0  # the predictor's `sleep_s` input: the simulated GPU time
    webhooks: bool = True  # False: `webhooks = false`, synchronous `POST /predictions`

    @property
    def model(self) -> str:
        return "bench-" + self.name.replace("_", "-")

    def toml(self) -> str:
        hooks = "" if self.webhooks else "webhooks = false\n"
        return (
            f'[backends.{self.name}]\nkind = "cog"\nurl = "{self.url}"\nslots = {self.slots}\n'
            f"usd_per_gpu_hour = 3.6\n\n[backends.{self.name}.options]\n"
            f"input = {{ sleep_s = {self.sleep_s} }}\n{hooks}\n"
            f'[models.{self.model}]\nlabel = "bench: {self.name}"\nformats = ["png"]\n'
            f'aspect_ratios = {{ "1:1" = [64, 64] }}\ntypical_latency_s = 0.5\n'
            f'backends = ["{self.name}"]\n\n'
        )


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load} (1/5/15 min)"
    )


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pixelpipe-bench-"))


def cog_server(work: Path, slots: int) -> CogServer:
    """Started by the caller (``with``): coglet on a free port, serving the test predictor."""
    return CogServer(work / f"cog-{slots}", slots=slots)


@contextmanager
def serving(work: Path, backends: list[Backend]) -> Iterator[Server]:
    """``pixelpipe serve`` with a catalog file of ``backends``, started and stopped by PID; its
    PIXELPIPE_PUBLIC_URL is its own URL, so cog can reach its webhook route."""
    work.mkdir(parents=True, exist_ok=True)
    catalog = work / "catalog.toml"
    catalog.write_text("".join(b.toml() for b in backends))
    port = free_port()
    env = {
        "PIXELPIPE_CATALOG_PATH": str(catalog),
        "PIXELPIPE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PIXELPIPE_LOG_LEVEL": "WARNING",
    }
    server = Server(work / "data", env, port=port)
    try:
        yield server.start(timeout_s=STARTUP_S)
    finally:
        server.stop()


def body(model: str, tag: str, i: int) -> dict[str, Any]:
    """A unique request (no cache hit): prompt and seed name the job's index."""
    return {"prompt": f"bench {tag} {i}", "model": model, "seed": i}


def query(srv: Server, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    uri = f"file:{srv.data_dir / 'pixelpipe.db'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
        return db.execute(sql, args).fetchall()


def gpu_seconds(srv: Server, job_ids: list[str]) -> dict[str, float]:
    """Job id → cog's ``metrics.predict_time`` of its billed run (the ledger's gpu_seconds)."""
    marks = ",".join("?" * len(job_ids))
    rows = query(
        srv,
        f"SELECT job_id, detail FROM ledger_entries WHERE state = 'billed' AND job_id IN ({marks})",
        *job_ids,
    )
    out = {}
    for job_id, detail in rows:
        out[job_id] = float(json.loads(detail)["gpu_seconds"])
    return out


def wait_terminal(srv: Server, job_ids: list[str], timeout_s: float) -> None:
    """Until every job of ``job_ids`` ended (read from the SQLite file every 0.2 s)."""
    deadline = time.monotonic() + timeout_s
    marks = ",".join("?" * len(job_ids))
    sql = f"SELECT count(*) FROM jobs WHERE status IN {TERMINAL} AND id IN ({marks})"
    while query(srv, sql, *job_ids)[0][0] < len(job_ids):
        if time.monotonic() > deadline:
            raise TimeoutError(query(srv, "SELECT status, count(*) FROM jobs GROUP BY status"))
        time.sleep(0.2)


def cog_runs(cog: CogServer) -> Counter[str]:
    """How many times cog's predictor ran, per job id: the predictor prints one "drew …" line per
    run into cog's log, under the prediction id (the run tag ``<job>.<attempt>.<hmac>``)."""
    runs: Counter[str] = Counter()
    for line in cog.log.read_text().splitlines():
        if '"drew ' not in line:
            continue
        fields = json.loads(line).get("fields", {})
        runs[str(fields.get("prediction_id", "")).split(".")[0]] += 1
    return runs


def pct(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1), nearest rank."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def ms_line(name: str, samples_s: list[float]) -> str:
    med, p95 = statistics.median(samples_s) * 1000, pct(samples_s, 0.95) * 1000
    share = med / (FLUX_SCHNELL_S * 1000) * 100
    share95 = p95 / (FLUX_SCHNELL_S * 1000) * 100
    return (
        f"  {name:34s} median {med:6.1f} ms ({share:4.1f} %)   p95 {p95:6.1f} ms ({share95:4.1f} %)"
    )


def follow(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    """Read the job's SSE stream until it ended; the job as its last event gave it."""
    with client.stream("GET", job["links"]["events"]) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:") and any(f'"{s}"' in line for s in TERMINAL):
                data: dict[str, Any] = json.loads(line[5:])
                if data.get("job", {}).get("status") in TERMINAL:
                    return dict(data["job"])
    raise RuntimeError(f"the event stream of {job['id']} ended before the job did")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
