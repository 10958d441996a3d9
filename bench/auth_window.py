"""Print the auth-window probe figures (see ``tests/support/auth_probe.py``).

    .venv/bin/python bench/auth_window.py [--burst 30] [--restarts 3]

Prints one line per start and a total: keyless POSTs accepted while an API key exists (must be 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.auth_probe import probe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=30, help="concurrent keyless POSTs per start")
    parser.add_argument("--restarts", type=int, default=3, help="SIGKILL + restart rounds")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="pixelpipe-authwin-"))
    runs = probe(data, burst=args.burst, restarts=args.restarts)
    for run in runs:
        codes = ", ".join(f"{code}×{n}" for code, n in sorted(run.statuses.items()))
        print(f"{run.label}: {run.accepted}/{args.burst} accepted without a key ({codes})")
    total = sum(r.accepted for r in runs)
    print(f"total: {total} of {args.burst * len(runs)} keyless requests accepted")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
