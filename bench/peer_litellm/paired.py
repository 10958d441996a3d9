"""Paired A/B of two pixelpipe trees: short wrk bursts alternated, so a drifting VM hits both.

Not a test: it prints figures. One fake OpenAI backend, two ``pixelpipe serve`` (``--baseline``:
another checkout's ``src`` on this venv, e.g. a ``git worktree`` of the commit before a change;
and this checkout), then ``--rounds`` rounds of one ``--seconds`` wrk burst on each, the order
swapped every round. This VM's speed drifts by ±20 % within minutes, more than most changes
move: ``run.py --repeat`` (8 s runs) cannot see a 5 % change, pairs of 3 s bursts can. Prints each
side's median CPU ms per request (the process tree's, from /proc), req/s and p50, and the median
of the paired differences with how many pairs the change won.

    .venv/bin/python bench/peer_litellm/paired.py --baseline /tmp/base-tree --load gen -c 64
    .venv/bin/python bench/peer_litellm/paired.py --baseline /tmp/base-tree --load hit --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Body, Row, json_body, start_fake, start_pixelpipe, stop, unique, wrk

LOADS = {
    "gen": lambda: json_body(prompt=unique()),  # a full generation per request
    "hit": lambda: json_body(seed=7),  # the same request: cache hits
}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    p.add_argument("--load", choices=list(LOADS), default="gen")
    p.add_argument("-c", "--conns", type=int, default=64)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seconds", type=int, default=3, help="each burst")
    o = p.parse_args()
    out = Path(tempfile.mkdtemp(prefix="pixelpipe-paired-"))
    fake, fake_url = start_fake(out)
    procs = [fake]
    try:
        base = start_pixelpipe(out, fake_url, "base", o.baseline)
        procs.append(base.proc)
        ours = start_pixelpipe(out, fake_url, "this", None)
        procs.append(ours.proc)
        body = Body("/v1/images/generations", LOADS[o.load]())
        for t in (base, ours):
            wrk(t, body, o.conns, 2, out, 1)  # warm both
        rows: dict[str, list[Row]] = {"base": [], "this": []}
        for i in range(o.rounds):
            for t in (base, ours) if i % 2 == 0 else (ours, base):
                rows[t.name].append(wrk(t, body, o.conns, o.seconds, out, 0))
    finally:
        for proc in reversed(procs):
            stop(proc)
    print(f"{o.load}, {o.conns} connections, {o.rounds} rounds of {o.seconds} s; logs in {out}")
    for name, rs in rows.items():
        cpu = " ".join(f"{r.cpu_ms:.2f}" for r in rs)
        print(
            f"{name:5s} CPU {statistics.median(r.cpu_ms for r in rs):.3f} ms/req, "
            f"{statistics.median(r.rps for r in rs):.0f} req/s, "
            f"p50 {statistics.median(r.p50 for r in rs):.1f} ms (medians; CPU each: {cpu})"
        )
    diffs = [t.cpu_ms - b.cpu_ms for b, t in zip(rows["base"], rows["this"], strict=True)]
    ratios = [t.rps / b.rps for b, t in zip(rows["base"], rows["this"], strict=True)]
    won = sum(d < 0 for d in diffs)
    cpu, rps = statistics.median(diffs), statistics.median(ratios)
    print(
        f"paired: CPU {cpu:+.3f} ms/req, req/s ×{rps:.3f} (medians); "
        f"this tree used less CPU in {won} of {len(diffs)} pairs"
    )


if __name__ == "__main__":
    main()
