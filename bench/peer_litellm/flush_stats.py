"""How busy the group committer's flusher is under load: its flushes per second, their size, wall
time and thread CPU (not a test; it prints figures).

Starts the fake OpenAI backend and one ``pixelpipe serve`` (``--src``: another checkout's code)
with a ``sitecustomize`` on its path that times ``GroupCommitter._flush`` (the batches run in a
worker thread) and ``_inline`` (small batches on the event loop's thread), drives it with wrk, and
reports the middle of the run. A flusher busy most of the wall time while its thread's CPU is a
third of that waits for something else — the GIL, mostly (docs/adr/0014-gil-round-trips.md).

    .venv/bin/python bench/peer_litellm/flush_stats.py --load gen -c 64
    .venv/bin/python bench/peer_litellm/flush_stats.py --load hit -c 64 --src /tmp/other/src
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import LOADS
from run import Body, start_fake, start_pixelpipe, stop, wrk

SITECUSTOMIZE = """
import os, signal, time
import pixelpipe.group_commit as g
LOG = []
_flush, _inline = g.GroupCommitter._flush, g.GroupCommitter._inline
def timed_flush(self, works, rows):
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        return _flush(self, works, rows)
    finally:
        cpu = time.thread_time() - c0
        LOG.append(("thread", t0, time.perf_counter(), cpu, len(works) + len(rows)))
def timed_inline(self, works):
    t0, c0 = time.perf_counter(), time.thread_time()
    done = _inline(self, works)
    if done is not None:
        LOG.append(("inline", t0, time.perf_counter(), time.thread_time() - c0, len(works)))
    return done
g.GroupCommitter._flush, g.GroupCommitter._inline = timed_flush, timed_inline
def dump(*_):
    with open(os.environ["FLUSH_LOG"], "w") as f:
        f.writelines(" ".join(map(str, r)) + "\\n" for r in LOG)
signal.signal(signal.SIGUSR1, dump)
"""


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--load", choices=list(LOADS), default="gen")
    p.add_argument("-c", "--conns", type=int, default=64)
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--src", type=Path, help="another checkout's src (default: this one's)")
    o = p.parse_args()
    out = Path(tempfile.mkdtemp(prefix="pixelpipe-flush-"))
    hook = out / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    src = o.src or Path(__file__).resolve().parents[2] / "src"
    log = out / "flushes.txt"
    fake, fake_url = start_fake(out)
    procs = [fake]
    try:
        env = {"PYTHONPATH": f"{hook}:{src}", "FLUSH_LOG": str(log)}
        target = start_pixelpipe(out, fake_url, **env)
        procs.append(target.proc)
        body = Body("/v1/images/generations", LOADS[o.load]())
        row = wrk(target, body, o.conns, o.seconds, out, 1)
        os.kill(target.proc.pid, signal.SIGUSR1)
        time.sleep(0.5)
    finally:
        for proc in reversed(procs):
            stop(proc)
    print(f"{o.load}, {o.conns} conns, {o.seconds} s: {row.rps:.0f} req/s, p50 {row.p50:.1f} ms")
    report(log, o.seconds)


def report(log: Path, seconds: int) -> None:
    """Flushes that began and ended in the run's middle (its first and last second left out)."""
    rows = [line.split() for line in log.read_text().splitlines()]
    end = max(float(r[2]) for r in rows)
    lo, hi = end - seconds + 1.0, end - 1.0  # perf_counter is the server's: align on its end
    span = hi - lo
    for kind in ("thread", "inline"):
        mid = [
            (float(a), float(b), float(c), int(n))
            for k, a, b, c, n in rows
            if k == kind and float(a) >= lo and float(b) <= hi
        ]
        if not mid:
            continue
        walls = sorted(b - a for a, b, _, _ in mid)
        p90 = walls[int(0.9 * len(walls))]
        busy, cpu = sum(walls), sum(c for _, _, c, _ in mid)
        units = sum(n for *_, n in mid)
        print(
            f"{kind:6s} {len(mid) / span:5.0f} flushes/s, {units / span:6.0f} units/s, "
            f"median {statistics.median(n for *_, n in mid):.0f} units; wall median "
            f"{1000 * statistics.median(walls):.2f} ms, p90 {1000 * p90:.2f} ms; "
            f"busy {busy / span:.0%} of the time, its thread's CPU {cpu / span:.0%}"
        )


if __name__ == "__main__":
    main()
