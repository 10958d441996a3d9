"""Who makes ``pixelpipe serve``'s threads wait for the GIL under load (not a test; it prints
figures). Needs Linux ``perf`` with access to scheduler tracepoints (root here).

Starts the fake OpenAI backend and one ``pixelpipe serve``, drives it with wrk, and meanwhile
records every context switch of the server's threads with its native call stack (``perf record -e
sched:sched_switch --call-graph dwarf``). A thread that goes to sleep inside ``take_gil`` had
given the GIL up around a blocking call and now waits to take it back; the C function that
gave it up (``os_fsync``, SQLite's ``stmt_step``, ``os_open``, Pillow's ``_decode`` …) is what
the table counts, per request and per thread (the event loop's thread is the one that runs
uvloop). With two cores and several threads, each such wait is a futex wake-up and a context
switch while nobody runs Python: docs/adr/0014-gil-round-trips.md.

    .venv/bin/python bench/peer_litellm/gil_waits.py --load gen -c 64
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import LOADS
from run import Body, Row, start_fake, start_pixelpipe, stop, wrk

SKIP = {"take_gil", "PyEval_RestoreThread", "PyEval_AcquireThread", "PyGILState_Ensure"}
NAMES = {  # inlined C helpers, named by the call they serve
    "posix_fildes_fd": "os.fsync",
    "os_open_impl": "os.open",
    "os_unlink_impl": "os.unlink",
    "posix_do_stat": "os.stat",
    "os_link_impl": "os.link",
    "_Py_write_impl": "os.write",
    "os_close_impl": "os.close",
    "stmt_step": "sqlite3 step",
    "_queue_SimpleQueue_get_impl": "executor queue get",
    "_decode": "Pillow decode",
}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--load", choices=list(LOADS), default="gen")
    p.add_argument("-c", "--conns", type=int, default=64)
    p.add_argument("--record-s", type=float, default=1.5, help="perf's window, mid-run")
    o = p.parse_args()
    out = Path(tempfile.mkdtemp(prefix="pixelpipe-gil-"))
    data = out / "perf.data"
    fake, fake_url = start_fake(out)
    procs = [fake]
    try:
        target = start_pixelpipe(out, fake_url)
        procs.append(target.proc)
        body = Body("/v1/images/generations", LOADS[o.load]())
        wrk(target, body, o.conns, 1, out, 0)  # warm
        perf = [
            *("perf", "record", "-q", "-o", str(data), "-e", "sched:sched_switch"),
            *("--call-graph", "dwarf,16384", "-p", str(target.proc.pid)),
            *("--", "sleep", str(o.record_s)),
        ]
        rows: list[Row] = []
        seconds = int(o.record_s) + 3
        load = threading.Thread(
            target=lambda: rows.append(wrk(target, body, o.conns, seconds, out, 0))
        )
        load.start()
        time.sleep(1.0)
        subprocess.run(perf, check=True, capture_output=True)
        load.join()
        loop_tid = str(target.proc.pid)  # the event loop runs in the main thread
    finally:
        for proc in reversed(procs):
            stop(proc)
    script = subprocess.run(
        ["perf", "script", "-i", str(data)], capture_output=True, text=True, check=True
    ).stdout
    report(script, rows[0].rps * o.record_s, loop_tid)


def report(script: str, requests: float, loop_tid: str) -> None:
    by_caller: collections.Counter[str] = collections.Counter()
    loop: collections.Counter[str] = collections.Counter()
    switches = 0
    for block in script.split("\n\n"):
        lines = block.strip().splitlines()
        head = re.match(r"\s*\S+\s+(\d+)", lines[0]) if lines else None
        if head is None:
            continue
        switches += 1
        frames = [_symbol(line) for line in lines[1:]]
        if "take_gil" not in frames:
            continue
        after = frames[frames.index("take_gil") + 1 :]
        gave_up = next((f for f in after if f not in SKIP and not f.startswith("_PyEval")), "?")
        gave_up = NAMES.get(gave_up, gave_up)
        by_caller[gave_up] += 1
        if head.group(1) == loop_tid:
            loop[gave_up] += 1
    waits = sum(by_caller.values())
    print(
        f"{switches} context switches, {waits} of them waits for the GIL, ~{requests:.0f} requests"
    )
    print(f"GIL waits per request: {waits / max(1.0, requests):.1f} (a long wait counts once")
    print("per 5 ms switch interval it lasts)")
    print("| gave the GIL up in | waits | per request | on the event loop's thread |")
    print("|---|---:|---:|---:|")
    for name, n in by_caller.most_common(15):
        print(f"| `{name}` | {n} | {n / max(1.0, requests):.2f} | {loop[name]} |")


def _symbol(line: str) -> str:
    parts = line.strip().split(" ", 1)
    return parts[1].split("+")[0].split(" (")[0] if len(parts) == 2 else ""


if __name__ == "__main__":
    main()
