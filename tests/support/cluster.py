"""The scaled-out shape on one machine: real PostgreSQL, Redis and SeaweedFS on loopback, then
``pixelpipe api`` / ``worker`` / ``sweeper`` processes pointed at them by URL only.

Used by the multi-process tests, by ``bench/scale_workers.py`` and by ``scripts/cluster`` (run
as ``python -m tests.support.cluster``). Every process is started by PID and stopped by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pixelpipe.runner import SWEEPER_LOCK_KEY
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.servers.seaweedfs import SeaweedFS
from tests.support.serve import CLI, Server, free_port

SWEEPER_LOCK_SQL = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    f"AND objid::bigint = {SWEEPER_LOCK_KEY} AND objsubid = 1"
)


@dataclass
class ClusterSpec:
    apis: int = 2
    workers: int = 2
    sweepers: int = 1
    preview_latency_ms: int = 0
    lease_s: float = 10.0
    sweep_interval_s: float = 1.0
    log_level: str = "WARNING"
    api_ports: list[int] = field(default_factory=list)  # empty: free ports
    env: dict[str, str] = field(default_factory=dict)


class Cluster:
    """``with Cluster(tmp_dir, ClusterSpec(...)) as c: c.apis[0].url`` — everything stopped after."""

    def __init__(self, workdir: Path, spec: ClusterSpec | None = None) -> None:
        self.workdir = workdir
        self.spec = spec or ClusterSpec()
        self.data_dir = workdir / "pixelpipe"
        self.pg = PostgresServer(workdir / "postgres")
        self.redis = RedisServer(workdir / "redis")
        self.s3 = SeaweedFS(workdir / "seaweedfs", bucket="pixelpipe")
        self.database = "pixelpipe"
        self.env: dict[str, str] = {}
        self.apis: list[Server] = []
        self.workers: list[Server] = []
        self.sweepers: list[Server] = []
        self._started: list[object] = []

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.start_backends()
            self.migrate()
            ports = self.spec.api_ports
            jobs: list[tuple[str, int | None]] = [
                ("api", ports[i] if i < len(ports) else None) for i in range(self.spec.apis)
            ]
            jobs += [("worker", None)] * self.spec.workers
            jobs += [("sweeper", None)] * self.spec.sweepers
            with ThreadPoolExecutor(len(jobs)) as pool:  # start together, wait for each
                list(pool.map(lambda job: self.add(job[0], port=job[1]), jobs))
        except BaseException:
            self.stop()
            raise
        return self

    def start_backends(self) -> None:
        for server in (self.pg, self.redis, self.s3):
            server.start()
            self._started.append(server)
        url = self.pg.create_database(self.database)
        self.env = {
            "PIXELPIPE_DATABASE_URL": url,
            "PIXELPIPE_QUEUE_URL": url,
            "PIXELPIPE_REDIS_URL": self.redis.url,
            **self.s3.env(prefix="images"),
            "PIXELPIPE_SECRET_KEY": secrets.token_urlsafe(48),
            "PIXELPIPE_PREVIEW_LATENCY_MS": str(self.spec.preview_latency_ms),
            "PIXELPIPE_LEASE_S": str(self.spec.lease_s),
            "PIXELPIPE_SWEEP_INTERVAL_S": str(self.spec.sweep_interval_s),
            "PIXELPIPE_LOG_LEVEL": self.spec.log_level,
            **self.spec.env,
        }

    def migrate(self) -> None:
        """``pixelpipe migrate`` once, before any process starts (the production order)."""
        done = subprocess.run(
            [*CLI, "migrate"],
            env={**os.environ, "PIXELPIPE_DATA_DIR": str(self.data_dir), **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pixelpipe migrate failed:\n{done.stdout}\n{done.stderr}")

    def add(self, role: str, *, port: int | None = None, wait: bool = True) -> Server:
        """Start one process; with ``wait``, return once it serves (api) or runs (the others)."""
        server = Server(self.data_dir, self.env, role=role, port=port or free_port())
        # workers and sweepers say "started" at INFO: that line is their readiness signal
        level = self.spec.log_level if role == "api" else _at_most_info(self.spec.log_level)
        server.env["PIXELPIPE_LOG_LEVEL"] = level
        server.start(timeout_s=60)
        {"api": self.apis, "worker": self.workers, "sweeper": self.sweepers}[role].append(server)
        if wait and role != "api":
            wait_for_log(server, " started", timeout_s=60)
        return server

    def stop(self) -> None:
        def stop_one(server: Server) -> None:
            with contextlib.suppress(Exception):
                server.stop()

        procs = [*self.apis, *self.workers, *self.sweepers]
        if procs:
            with ThreadPoolExecutor(len(procs)) as pool:  # SIGTERM all, each waited for by PID
                list(pool.map(stop_one, procs))
        for backend in reversed(self._started):
            with contextlib.suppress(Exception):
                backend.stop()  # type: ignore[attr-defined]
        self._started.clear()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- inspection ---------------------------------------------------------------------------
    def sql(self, query: str) -> str:
        return self.pg.psql(query, self.database).strip()

    def scalar(self, query: str) -> int:
        return int(self.sql(query) or 0)

    def active_sweepers(self) -> int:
        return self.scalar(SWEEPER_LOCK_SQL)

    def urls(self) -> dict[str, str]:
        return {
            **{f"api {i + 1}": s.url for i, s in enumerate(self.apis)},
            "postgresql": self.pg.dsn(self.database),
            "redis": self.redis.url,
            "s3 (SeaweedFS)": f"{self.s3.endpoint}/{self.s3.bucket}",
        }


def _at_most_info(level: str) -> str:
    return level if level.upper() == "DEBUG" else "INFO"


def wait_for_log(server: Server, marker: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = server.log.read_text(errors="replace") if server.log.exists() else ""
        if marker in text:
            return
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"{server.role} exited early:\n{text[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{server.role} did not log {marker!r} within {timeout_s}s")


def _describe(cluster: Cluster) -> str:
    lines = ["pixelpipe cluster is up (everything on 127.0.0.1):"]
    lines += [f"  {name:<16} {url}" for name, url in cluster.urls().items()]
    procs = [*cluster.apis, *cluster.workers, *cluster.sweepers]
    lines.append("  processes:")
    for s in procs:
        pid = s.proc.pid if s.proc else "?"
        lines.append(f"    {s.role:<8} pid {pid:<8} log {s.log}")
    lines.append(
        f"  sweepers active: {cluster.active_sweepers()} of {len(cluster.sweepers)} "
        "(the others wait on the advisory lock)"
    )
    lines.append(f"  logs and data: {cluster.workdir}")
    lines.append("  try:  curl -s -X POST " + cluster.apis[0].url + "/v1/generations \\")
    lines.append("          -H 'content-type: application/json' -d '{\"prompt\":\"a red fox\"}'")
    lines.append("  Ctrl-C stops everything.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the scaled-out shape locally.")
    parser.add_argument("--dir", type=Path, default=Path("cluster-data"), help="work directory")
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sweepers", type=int, default=2, help="only one is ever active")
    parser.add_argument("--port", type=int, default=8001, help="first API port (0: free ports)")
    parser.add_argument("--preview-latency-ms", type=int, default=1500)
    args = parser.parse_args(argv)

    ports = [args.port + i for i in range(args.apis)] if args.port else []
    spec = ClusterSpec(
        apis=args.apis,
        workers=args.workers,
        sweepers=args.sweepers,
        preview_latency_ms=args.preview_latency_ms,
        log_level="INFO",
        api_ports=ports,
    )
    workdir = args.dir.resolve() / time.strftime("%Y%m%d-%H%M%S")
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    cluster = Cluster(workdir, spec)
    try:
        print(f"starting PostgreSQL, Redis, SeaweedFS and pixelpipe under {workdir} ...")
        cluster.start()
        deadline = time.monotonic() + 15
        while cluster.sweepers and not cluster.active_sweepers() and time.monotonic() < deadline:
            time.sleep(0.2)
        print(_describe(cluster), flush=True)
        while not stop:
            time.sleep(0.5)
            for s in [*cluster.apis, *cluster.workers, *cluster.sweepers]:
                if s.proc is not None and s.proc.poll() is not None:
                    print(f"!! {s.role} (pid {s.proc.pid}) exited with {s.proc.returncode}")
                    cluster.apis = [a for a in cluster.apis if a is not s]
                    cluster.workers = [w for w in cluster.workers if w is not s]
                    cluster.sweepers = [w for w in cluster.sweepers if w is not s]
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping (by PID) ...", flush=True)
        cluster.stop()
        print("stopped.")
    sys.exit(0)


if __name__ == "__main__":
    main()
