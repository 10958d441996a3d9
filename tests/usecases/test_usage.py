"""The usage report: rows, total and storage cost — an unpriced storage backend is unpriced, not
an error, for the API route and ``pixelpipe usage`` alike (both call this use case)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pixelpipe.ledger import Charge, MemoryLedger, Price
from pixelpipe.pricing import load_price_table
from pixelpipe.usecases.usage import Books, cost_totals, usage_report
from tests.support.serve import CLI


class _Images:
    async def image_stats(self) -> tuple[int, int]:
        return 2, 2 * 2**30


async def _books(backend: str | None) -> Books:
    ledger = MemoryLedger()
    await ledger.record(
        Charge("j1", 1, "replicate", "p1", "flux-dev", "attempt", Price(3_000, "v", "per_image"))
    )
    return Books(ledger, _Images(), load_price_table(), backend)


async def test_rows_total_and_the_storage_cost_at_the_backend_rate() -> None:
    report = await usage_report(await _books("r2"), "model")
    assert [(r.group, r.spent_micros) for r in report.rows] == [("flux-dev", 3_000)]
    assert report.total.spent_micros == 3_000
    assert report.storage is not None
    assert (report.storage.images, report.storage.monthly_micros) == (2, 30_000)  # $0.015/GB
    assert (await cost_totals(await _books("r2"))).spent_total_micros == 3_000


async def test_a_backend_without_a_price_is_unpriced_not_an_error() -> None:
    report = await usage_report(await _books("ftp"), "model")
    assert report.storage is not None and report.storage.monthly_micros is None
    assert report.storage.backend == "ftp"


async def test_a_storage_that_names_no_backend_is_left_out() -> None:
    assert (await usage_report(await _books(None), "model")).storage is None


def test_pixelpipe_usage_names_a_bad_storage_url_instead_of_crashing(tmp_path: Path) -> None:
    """The error's detail is printed as text: ``s3://bucket[/prefix]`` in it is no markup (on
    main, rich took ``[/prefix]`` for a closing tag and the command died with a traceback)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PIXELPIPE_DATA_DIR": str(tmp_path),
        "PIXELPIPE_STORAGE_URL": "gs://bucket",  # not a storage backend pixelpipe has
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run(
        [*CLI, "usage", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "s3://bucket[/prefix]" in done.stderr and "PIXELPIPE_STORAGE_URL" in done.stderr
