"""Start `pixelpipe serve` for a benchmark (free port, temp data dir, stopped by PID)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.serve import Server


def bench_server(**env: str) -> Server:
    data = Path(tempfile.mkdtemp(prefix="pixelpipe-bench-"))
    return Server(data, {"PIXELPIPE_LOG_LEVEL": "WARNING", **env})


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
