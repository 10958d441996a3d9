"""Suite-wide plugins: the real-server fixtures (PostgreSQL, Redis, SeaweedFS) start on first use.

``scripts/test`` runs the suite in two processes (pytest-xdist, ``--dist loadfile
--no-loadscope-reorder``): a file's tests stay in one process, so its module fixtures start once,
and files are handed out in collection order, so the long ones go first
(:func:`pytest_collection_modifyitems`): an 80 s fuzz run started last would leave the other
process idle at the end.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.servers.fixtures", "tests.support.services"]

# the longest files (``--durations``, 2-core machine: 40-80 s each), then files with a test marked
# so, in this order; a stale entry here costs only balance, never a test
LONGEST = (
    "tests/security/test_fuzz.py",
    "tests/security/test_fault_injection.py",
    "tests/security/test_openapi_conformance.py",
    "tests/scale/test_cluster_e2e.py",
    "tests/scale/test_cluster_providers_e2e.py",
)
HEAVY_FIRST = ("slow", "browser")


def _weight(path: str, markers: set[str]) -> tuple[int, int]:
    if path in LONGEST:
        return 0, LONGEST.index(path)
    return 1, next((i for i, name in enumerate(HEAVY_FIRST) if name in markers), len(HEAVY_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order files by their heaviest marker (stable: the order inside a file, and among files of
    one weight, is pytest's own)."""
    markers: dict[str, set[str]] = {}
    for item in items:
        markers.setdefault(item.nodeid.split("::", 1)[0], set()).update(
            m.name for m in item.iter_markers()
        )

    def weight(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::", 1)[0]
        return _weight(path, markers[path])

    items.sort(key=weight)
