"""Where a pixelpipe request's CPU goes: py-spy samples of ``pixelpipe serve`` under wrk, by stage.

Not a test. Starts the fake OpenAI backend and one ``pixelpipe serve`` (as ``run.py`` does), then
for each load (``gen``/``hit``/``gen1m`` at the connection counts asked) runs wrk while
``py-spy record`` samples every thread of the server (idle waits dropped), and prints the CPU per
request (from /proc) and the thread time per request (py-spy's samples of running threads, a
syscall such as fsync included) by the stage each sample is in — the innermost frame naming one:

    .venv/bin/python bench/peer_litellm/profile.py                    # gen + hit, c=1 and c=64
    .venv/bin/python bench/peer_litellm/profile.py --load gen1m -c 1 --py-spy /path/to/py-spy
    .venv/bin/python bench/peer_litellm/profile.py --src /tmp/other-checkout   # another tree

py-spy comes from PyPI (``pip install py-spy`` into any venv; it needs ptrace rights on the
server). Thread time is not CPU time: a thread in fsync or a lock wait counts as running.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (
    CLK,
    HERE,
    Target,
    json_body,
    start_fake,
    start_pixelpipe,
    stop,
    tree_ticks,
    unique,
)

# (stage, substrings of a frame) — the innermost frame of a sample that matches decides
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("pixels: decode, verify, thumbnail", ("PIL/", "pixelpipe/fetch/")),
    ("storage: files, fsync", ("pixelpipe/storage/",)),
    (
        "database: SQL, transactions",
        ("sqlalchemy/", "pixelpipe/compiled_sql", "pixelpipe/jobs/sql/", "pixelpipe/ledger/sql/"),
    ),
    ("database: group commit", ("pixelpipe/group_commit", "pixelpipe/db.py")),
    ("API-key check", ("KeyExistence", "any_key", "count_keys", "aiosqlite/")),
    ("provider call: httpx", ("httpx/", "httpcore/", "h11/", "anyio/")),
    ("provider answer: JSON, base64", ("pixelpipe/providers/",)),
    ("dispatcher rounds", ("pixelpipe/dispatcher.py",)),
    (
        "worker steps, billing, events",
        ("pixelpipe/worker/", "pixelpipe/jobs/", "pixelpipe/notify/"),
    ),
    ("OpenAI answer: base64, JSON", ("respond (pixelpipe/api", "image_bytes")),
    ("submit: intake, key, cache, admit", ("pixelpipe/usecases/", "pixelpipe/intake", "pydantic")),
    ("HTTP in/out: uvicorn, ASGI layers", ("uvicorn/", "starlette/", "fastapi/", "pixelpipe/api/")),
    ("thread hand-offs", ("concurrent/futures", "asyncio/threads.py", "threading.py")),
    ("event loop", ("asyncio/",)),
]
# leaf frames of a thread that is waiting, not running
IDLE_LEAVES = (
    "_worker (concurrent/futures/thread.py:81)",
    "Runner.run (asyncio/runners.py:118)",
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "wait (threading.py",
    "select (selectors.py",
)


def stage_of(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for stage, needles in STAGES:
            if any(n in frame for n in needles):
                return stage
    return "other"


def split(raw: Path) -> tuple[collections.Counter[str], int]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        if any(leaf.startswith(idle) for idle in IDLE_LEAVES):
            continue
        counts[stage_of(stack)] += int(n)
        total += int(n)
    return counts, total


def loads() -> dict[str, tuple[bytes, str]]:
    return {
        "gen": (json_body(prompt=unique()), "full generation, 64x64 PNG"),
        "hit": (json_body(seed=7), "cache hit"),
        "gen1m": (json_body(prompt=unique(" [1mb]")), "full generation, ~1 MB PNG"),
    }


def profile(
    t: Target, name: str, conns: int, o: argparse.Namespace, out: Path
) -> tuple[dict[str, float], dict[str, float]]:
    body, _ = loads()[name]
    body_file = out / f"{name}.json"
    body_file.write_bytes(body)
    url = t.base + "/v1/images/generations"
    env = {**os.environ, "BODY_FILE": str(body_file), "WRK_OUT": str(out / "wrk.json")}
    wrk = ["wrk", "-t1", f"-c{conns}", "--timeout", "30s", "-s", str(HERE / "post.lua")]
    subprocess.run([*wrk, "-d2s", url], env=env, capture_output=True)  # warm-up
    raw = out / f"{name}-c{conns}.raw"
    spy = [o.py_spy, "record", "-p", str(t.proc.pid), "-r", str(o.rate), "-f", "raw"]
    spy += ["--gil"] if o.gil else []
    sampler = subprocess.Popen(
        [*spy, "-d", str(o.duration + 2), "-o", str(raw), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    before = tree_ticks(t.proc.pid)
    subprocess.run([*wrk, f"-d{o.duration}s", url], env=env, capture_output=True)
    ticks = tree_ticks(t.proc.pid) - before
    sampler.wait(60)
    r = json.loads((out / "wrk.json").read_text())
    cpu_ms = ticks / CLK * 1000 / max(1, r["requests"])
    counts, total = split(raw)
    per_req = 1000 / o.rate / max(1, r["requests"])  # the samples fall in wrk's run
    shares = {stage: n * per_req for stage, n in counts.items()}
    figures = {
        "rps": r["rps"],
        "p50": r["p50_ms"],
        "cpu_ms": cpu_ms,
        "busy": total / (o.rate * o.duration),
        "thread_ms": total * per_req,
    }
    return figures, shares


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--load", action="append", choices=list(loads()))
    p.add_argument("-c", "--conns", default="1 64")
    p.add_argument("-d", "--duration", type=int, default=8)
    p.add_argument("-r", "--rate", type=int, default=100, help="samples per second")
    p.add_argument(
        "--gil",
        action="store_true",
        help="only samples holding the GIL: the one lock every Python thread takes in turn",
    )
    p.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    p.add_argument("--src", type=Path, help="profile another checkout's src on this venv")
    o = p.parse_args()
    out = Path(tempfile.mkdtemp(prefix="pixelpipe-profile-"))
    fake, fake_url = start_fake(out)
    procs = [fake]
    results: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    load_before = os.getloadavg()[0]
    try:
        t = start_pixelpipe(out, fake_url, "pixelpipe", o.src)
        procs.append(t.proc)
        for name in o.load or ["gen", "hit"]:
            for conns in [int(c) for c in o.conns.split()]:
                results[f"{name} c={conns}"] = profile(t, name, conns, o, out)
    finally:
        for proc in reversed(procs):
            stop(proc)
    print(f"\nload average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}; raw in {out}")
    cols = list(results)
    print("| thread ms per request, by stage | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    stages = [s for s, _ in STAGES] + ["other"]
    for stage in stages:
        cells = [f"{results[c][1].get(stage, 0):.2f}" for c in cols]
        if any(cell != "0.00" for cell in cells):
            print(f"| {stage} | " + " | ".join(cells) + " |")
    print(
        "| **thread ms / request** | "
        + " | ".join(f"**{results[c][0]['thread_ms']:.2f}**" for c in cols)
        + " |"
    )
    print(
        "| **server CPU ms / request (/proc)** | "
        + " | ".join(f"**{results[c][0]['cpu_ms']:.2f}**" for c in cols)
        + " |"
    )
    print(
        "| req/s · p50 ms | "
        + " | ".join(f"{results[c][0]['rps']:.0f} · {results[c][0]['p50']:.1f}" for c in cols)
        + " |"
    )
    print(
        "| threads running (samples / ticks) | "
        + " | ".join(f"{results[c][0]['busy']:.2f}" for c in cols)
        + " |"
    )


if __name__ == "__main__":
    main()
