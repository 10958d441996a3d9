"""Watch an image form (issue 17), in Debian's Chromium at desktop and phone widths, from the
offline preview's simulated partials (``PIXELPIPE_PREVIEW_LATENCY_MS``: three blurred, ever finer
thumbnails of the final picture while it draws) — no provider key.

On the job page the preview behind the live panel changes as the picture forms, with the percent
on the bar and the time left (the model has finished runs to measure), then the final image. On
the compare view each column forms on its own: its preview above a compact panel, its percent in
the column's status and its time left in its figures, then its image. Screenshots of the stages
go to ``$PIXELPIPE_WEB_SCREENSHOTS`` (docs/img/stream-*.png when the docs are refreshed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.serve import Server
from tests.web.test_web_ui import (  # noqa: F401 (fixtures)
    browser,
    expect,
    generate_via_api,
    new_page,
    shot,
    shots,
    wait_done,
)

pytestmark = pytest.mark.browser

LATENCY_MS = 9000  # partials at 2.25 s, 4.5 s and 6.75 s: time to look at each
MODELS = ("preview", "preview-sketch")
PHONE = (390, 844)
CATALOG = """\
[models.preview-sketch]
extends = "preview"
label = "Preview, second opinion"
"""
ETA = re.compile(r"^about \d+ (s|min) left$|^almost done$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`pixelpipe serve` whose preview models draw for 9 s, each with one finished run (so the
    page can tell the time left)."""
    root = tmp_path_factory.mktemp("stream-forming")
    catalog = root / "catalog.toml"
    catalog.write_text(CATALOG)
    env = {
        "PIXELPIPE_PREVIEW_LATENCY_MS": str(LATENCY_MS),
        "PIXELPIPE_CATALOG_PATH": str(catalog),
        "PIXELPIPE_TEST_MODE": "true",
    }
    with Server(root / "data", env).start(timeout_s=120) as srv:
        warm = [generate_via_api(srv.url, prompt="warm up", model=m, seed=1) for m in MODELS]
        with ThreadPoolExecutor(len(warm)) as pool:
            done = list(pool.map(lambda j: wait_done(srv.url, j["id"], timeout_s=60), warm))
        assert all(j["status"] == "succeeded" for j in done), done
        yield srv


def preview_changes(page: Any, where: str, since: str | None) -> str:
    """Wait until the preview under ``where`` is a picture other than ``since``; its src."""
    img = page.locator(f"{where} img.live-preview")
    expect(img).to_have_attribute("src", re.compile(r"^data:image/"), timeout=20_000)
    page.wait_for_function(
        """([where, since]) => {
          const img = document.querySelector(where + ' img.live-preview');
          return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src') !== since;
        }""",
        arg=[where, since],
        timeout=20_000,
    )
    src = img.get_attribute("src")
    assert src is not None
    return src


def percent(page: Any, where: str) -> int:
    value = page.locator(f"{where} .progress").get_attribute("aria-valuenow")
    assert value is not None, "the bar shows no percent"
    return int(value)


def watch_job_page(page: Any, base: str, out: Path, name: str, seed: int) -> None:
    job = generate_via_api(
        base, prompt="a lighthouse on a cliff at dusk", model="preview", seed=seed
    )
    page.goto(f"{base}/jobs/{job['id']}")
    stage = "#job-stage"
    first = preview_changes(page, stage, None)
    expect(page.locator(f"{stage} .live-eta")).to_have_text(ETA)
    early = percent(page, stage)
    shot(page, out, f"{name}-1")
    preview_changes(page, stage, first)  # a finer one: the picture forms
    assert percent(page, stage) > early
    shot(page, out, f"{name}-2")
    expect(page.locator(f"{stage} figure.result img")).to_be_visible(timeout=30_000)
    assert page.locator(f"{stage} img.live-preview").count() == 0  # the image, not a preview
    assert wait_done(base, job["id"])["status"] == "succeeded"


def test_the_job_page_shows_the_image_forming(
    server: Server,
    new_page: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    watch_job_page(new_page(width=1366, height=900), server.url, shots, "stream-job", seed=11)
    phone = new_page(width=PHONE[0], height=PHONE[1], dark=True)
    watch_job_page(phone, server.url, shots, "stream-job-phone", seed=12)


def watch_compare(page: Any, base: str, out: Path, name: str, seed: int) -> None:
    group = f"cmp_stream{seed}"
    jobs = [
        generate_via_api(base, prompt="a red fox in tall grass", model=m, seed=seed, group=group)
        for m in MODELS
    ]
    page.goto(f"{base}/compare/{group}")
    cols = [f".cmp-col[data-model='{m}']" for m in MODELS]
    firsts = [preview_changes(page, col, None) for col in cols]
    for col in cols:  # each column forms: its percent, its time left, its preview above the panel
        expect(page.locator(f"{col} .cmp-col-status")).to_have_text(re.compile(r"Running · \d+%"))
        expect(page.locator(f"{col} .cmp-time")).to_have_text(re.compile(r"≈ \d+ s left|almost"))
        expect(page.locator(f"{col} .live-canvas")).to_have_class(re.compile(r"has-preview"))
        assert_preview_shows_above_the_panel(page, col)
    shot(page, out, f"{name}-1")
    for col, first in zip(cols, firsts, strict=True):
        preview_changes(page, col, first)
    shot(page, out, f"{name}-2")
    for col in cols:
        expect(page.locator(f"{col} figure.result img")).to_be_visible(timeout=30_000)
    assert all(wait_done(base, j["id"])["status"] == "succeeded" for j in jobs)


def assert_preview_shows_above_the_panel(page: Any, col: str) -> None:
    """The compact panel sits at the bottom of the picture: the top half of the preview shows."""
    boxes = page.evaluate(
        """(col) => {
          const box = (s) => document.querySelector(col + ' ' + s).getBoundingClientRect();
          const p = box('.live-panel'), c = box('.live-canvas');
          return {panelTop: p.top, canvasTop: c.top, canvasH: c.height};
        }""",
        col,
    )
    assert boxes["panelTop"] - boxes["canvasTop"] > boxes["canvasH"] / 2, boxes


def test_the_compare_view_shows_each_column_forming(
    server: Server,
    new_page: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    watch_compare(new_page(width=1366, height=900), server.url, shots, "stream-compare", seed=21)
    phone = new_page(width=PHONE[0], height=PHONE[1])
    watch_compare(phone, server.url, shots, "stream-compare-phone", seed=22)
