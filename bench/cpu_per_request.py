"""CPU per request of the must-not-regress benchmarks, in one run (issue 13's guard).

Runs, each against a fresh ``pixelpipe serve`` (embedded defaults, 0 ms preview provider):

* ``native-hits``  ``bench/cache_hits.sh``'s load: POST /v1/generations, same body (cache hits);
* ``overhead``     ``bench/overhead.py``'s load: submit → ``succeeded`` over SSE, concurrency 1;
* ``openai-hits`` / ``openai-gen64``  ``bench/openai_endpoint.py``'s ``hits`` and ``gen64``.

"CPU ms/req" is the server process's user + system CPU (all threads) during the measured part
divided by the requests answered: steadier than req/s on a VM whose speed drifts. Compare two
commits by running this on each, same machine, back to back (``--repeat 3`` prints the median).

    .venv/bin/python bench/cpu_per_request.py [--repeat 3] [-d 10] [-n 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import bench_server
from openai_endpoint import cpu_s, run_wrk
from openai_endpoint import scenario as openai_scenario
from overhead import one

BENCH = Path(__file__).resolve().parent
NATIVE_BODY = '{"prompt": "a lighthouse at dusk", "seed": 7, "size": "64x64"}'


def native_hits(o: argparse.Namespace) -> tuple[float, float]:
    srv = bench_server().start(timeout_s=180)
    url = srv.url + "/v1/generations"
    try:
        headers = {"content-type": "application/json"}
        httpx.post(url, content=NATIVE_BODY, headers=headers, timeout=60).raise_for_status()
        pid = srv.proc.pid if srv.proc else 0
        before = cpu_s(pid)
        r = run_wrk("hits", url, ["-s", str(BENCH / "post.lua"), url], {"BODY": NATIVE_BODY}, o)
        return (cpu_s(pid) - before) * 1000 / max(1, r.requests), r.rps
    finally:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)


def overhead(o: argparse.Namespace) -> tuple[float, float]:
    srv = bench_server().start(timeout_s=180)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for i in range(20):
                one(client, 1_000_000 + i)  # warm up
            pid = srv.proc.pid if srv.proc else 0
            before = cpu_s(pid)
            rows = [one(client, i) for i in range(o.n)]
            cpu = (cpu_s(pid) - before) * 1000 / o.n
        return cpu, statistics.median(r[0] for r in rows)
    finally:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)


def openai(name: str) -> Callable[[argparse.Namespace], tuple[float, float]]:
    def run(o: argparse.Namespace) -> tuple[float, float]:
        r = openai_scenario(name, o)
        return r.cpu_ms_per_req, r.rps

    return run


SCENARIOS: dict[str, tuple[Callable[[argparse.Namespace], tuple[float, float]], str]] = {
    "native-hits": (native_hits, "req/s"),
    "overhead": (overhead, "server p50 ms"),
    "openai-hits": (openai("hits"), "req/s"),
    "openai-gen64": (openai("gen64"), "req/s"),
}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", choices=list(SCENARIOS), action="append")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("-d", "--duration", type=int, default=10)
    p.add_argument("-n", type=int, default=200, help="requests for the overhead scenario")
    p.add_argument("-c", "--connections", type=int, default=64)
    p.add_argument("-t", "--threads", type=int, default=2)
    o = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    load = os.getloadavg()[0]
    names = o.only or list(SCENARIOS)
    runs: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for _ in range(o.repeat):
        for name in names:
            runs[name].append(SCENARIOS[name][0](o))
    print(f"\n({os.cpu_count()} CPUs, load average before: {load:.2f}, repeat {o.repeat})")
    print(f"{'scenario':<13} {'CPU ms/req':>11} {'(runs)':<24} {'throughput/latency'}")
    for name in names:
        cpus = [c for c, _ in runs[name]]
        other = statistics.median(x for _, x in runs[name])
        shown = " ".join(f"{c:.3f}" for c in cpus)
        print(
            f"{name:<13} {statistics.median(cpus):>11.3f} {shown:<24} "
            f"{other:.1f} {SCENARIOS[name][1]}"
        )


if __name__ == "__main__":
    main()
