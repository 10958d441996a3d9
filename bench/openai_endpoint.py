"""Benchmark POST /v1/images/generations (the OpenAI-compatible endpoint) with wrk.

Not a test: prints requests/s and latency percentiles for three scenarios against a fresh
``pixelpipe serve`` each (embedded SQLite + local disk, the 0 ms preview provider):

* ``hits``     the same body every time: cache hits (intake, safety, key, cache lookup, $0 job
               row + ledger entry, signed URL);
* ``gen64``    a unique prompt per request, 64x64 WebP: full generations (submit, provider, verify,
               store, thumbnail, bill, notify, wait, answer);
* ``gen100k``  the same with a ~100 KB image (2048x2048 PNG, 98 KB; runs 3x as long).

    uv run python bench/openai_endpoint.py                   # all three, 10 s each
    uv run python bench/openai_endpoint.py --only hits -d 20

wrk runs on the same 2-core machine as the server (load generator included), 2 threads, 64
connections. Targets (issue 8): hits >= 2,000 req/s with p99 <= 50 ms; gen64 >= 350 req/s.
"CPU ms/req" is the server process's CPU (user + system, all threads) during the run divided by
the answered requests: steadier than req/s when other work shares the machine.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import bench_server

BENCH = Path(__file__).resolve().parent
PATH = "/v1/images/generations"
HIT_BODY = '{"prompt": "a lighthouse at dusk", "size": "64x64", "seed": 7}'


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: str
    command: str
    cpu_ms_per_req: float = float("nan")  # server process CPU (all threads) per answered request


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
    return float(m.group(1)) * scale[m.group(2)]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    name: str, url: str, args: list[str], env: dict[str, str], o: argparse.Namespace
) -> Result:
    duration = o.duration * (3 if name == "gen100k" else 1)  # seconds per request at 64 conns
    cmd = [
        "wrk",
        f"-t{o.threads}",
        f"-c{o.connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "30s",
        *args,
    ]
    shown = " ".join(cmd).replace(url, "http://127.0.0.1:$PORT" + PATH)
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return Result(
        name,
        rps,
        p50,
        p99,
        total,
        int(non2xx.group(1)) if non2xx else 0,
        sock.group(1) if sock else "none",
        shown,
    )


def measured(pid: int, run: Callable[[], Result]) -> Result:
    before = cpu_s(pid)
    result = run()
    result.cpu_ms_per_req = (cpu_s(pid) - before) * 1000 / max(1, result.requests)
    return result


def scenario(name: str, o: argparse.Namespace) -> Result:
    srv = bench_server().start(timeout_s=180)
    url = srv.url + PATH
    try:
        if name == "hits":
            r = httpx.post(
                url, content=HIT_BODY, headers={"content-type": "application/json"}, timeout=60
            )
            r.raise_for_status()  # the first request generates; the rest are cache hits
            args = ["-s", str(BENCH / "openai_hit.lua"), url]
            pid = srv.proc.pid if srv.proc else 0
            return measured(pid, lambda: run_wrk(name, url, args, {"BODY": HIT_BODY}, o))
        size, fmt = ("64x64", "webp") if name == "gen64" else ("2048x2048", "png")
        warm = httpx.post(
            url, json={"prompt": "warm up", "size": size, "output_format": fmt}, timeout=60
        )
        warm.raise_for_status()
        prefix = f"bench-{secrets.token_hex(4)}"
        args = ["-s", str(BENCH / "openai_unique.lua"), url, "--", prefix, size, fmt]
        return measured(srv.proc.pid if srv.proc else 0, lambda: run_wrk(name, url, args, {}, o))
    finally:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", choices=["hits", "gen64", "gen100k"], action="append")
    p.add_argument("-d", "--duration", type=int, default=10)
    p.add_argument("-c", "--connections", type=int, default=64)
    p.add_argument("-t", "--threads", type=int, default=2)
    o = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    load = os.getloadavg()[0]
    results = [scenario(name, o) for name in (o.only or ["hits", "gen64", "gen100k"])]
    print(
        f"\nPOST {PATH}  wrk -t{o.threads} -c{o.connections} -d{o.duration}s  "
        f"({os.cpu_count()} CPUs, load average before: {load:.2f})"
    )
    print(
        f"{'scenario':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
        f"{'non-2xx':>8} {'CPU ms/req':>11}  socket errors"
    )
    for r in results:
        print(
            f"{r.name:<9} {r.rps:>9.1f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.requests:>9} "
            f"{r.non_2xx:>8} {r.cpu_ms_per_req:>11.2f}  {r.socket_errors}"
        )
    print("\ncommands:")
    for r in results:
        print(f"  {r.name}: {r.command}")


if __name__ == "__main__":
    main()
