"""How long ``pixelpipe`` takes to answer help and the small commands (start-up cost).

    .venv/bin/python bench/cli_startup.py            # 10 runs of each, on a temporary data dir
    .venv/bin/python bench/cli_startup.py --runs 20

Prints, per command, the median and the fastest wall-clock time and the median CPU time
(user + system) of a fresh ``pixelpipe`` process. CPU time is the steadier figure on a shared
machine. ``hyperfine`` gives the same figures: ``hyperfine -N -w 1 '.venv/bin/pixelpipe --help'``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [
    ["--help"],
    ["generate", "--help"],
    ["keys", "--help"],
    ["webhook-secret"],
    ["keys", "list"],
    ["usage"],
    ["budgets", "list"],
]


def once(exe: str, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([exe, *args], env=env, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    opts = parser.parse_args()
    exe = str(Path(sys.executable).parent / "pixelpipe")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PIXELPIPE_DATA_DIR": tmp}
        once(exe, ["keys", "list"], env)  # creates the database: later runs find it current
        print(f"{'command':<22} {'median':>8} {'fastest':>8} {'cpu':>8}   ({opts.runs} runs)")
        for args in COMMANDS:
            once(exe, args, env)  # warm the file cache
            runs = [once(exe, args, env) for _ in range(opts.runs)]
            walls, cpus = [w for w, _ in runs], [c for _, c in runs]
            print(
                f"{' '.join(args):<22} {statistics.median(walls) * 1000:>6.0f}ms "
                f"{min(walls) * 1000:>6.0f}ms {statistics.median(cpus) * 1000:>6.0f}ms"
            )


if __name__ == "__main__":
    main()
