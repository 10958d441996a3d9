"""A self-hosted run followed live on the page (issue 14), in Debian's Chromium at desktop and
phone widths: one AUTOMATIC1111 backend (the protocol-faithful fake of `pixelpipe fake-providers`,
slowed down through its control endpoint) with one slot, two jobs. A1111 runs synchronously, so the
first job is still `submitting` while it generates: its live view says "Generating on sd_box", its
percent rises on the bar and the current step, and the server's live preview shows behind the panel,
which stays on top and readable. The second job waits for the slot, `queued` with
`progress.queue_position`: "#1 in line". Then both succeed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve import Server, start_fake_providers, stop_pid
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

STEPS = 20
STEP_S = 0.3  # 6 s a run: the worker writes its progress at most twice a second
PHONE = (390, 844)

CATALOG = """\
[backends.sd_box]
kind = "a1111"
url = "{url}"
slots = 1
usd_per_gpu_hour = 1.2

[models.sd-house]
label = "SD house"
formats = ["png"]
aspect_ratios = {{ "1:1" = [512, 512] }}
steps = {{ min = 1, max = 50, default = {steps} }}
typical_latency_s = 5.0
backends = ["sd_box"]
"""


@pytest.fixture(scope="module")
def a1111_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`pixelpipe serve` with one A1111 backend (one slot) on the slowed-down fake."""
    root = tmp_path_factory.mktemp("a1111")
    fakes, url = start_fake_providers(root / "fakes.log")
    server = None
    try:
        a1111 = f"{url}/a1111"
        httpx.post(f"{a1111}/_control", json={"step_s": STEP_S}, timeout=5).raise_for_status()
        # a live preview every 2 steps (A1111's default is every 10)
        options = {"show_progress_every_n_steps": 2}
        httpx.post(f"{a1111}/sdapi/v1/options", json=options, timeout=5).raise_for_status()
        catalog = root / "catalog.toml"
        catalog.write_text(CATALOG.format(url=a1111, steps=STEPS))
        env = {"PIXELPIPE_CATALOG_PATH": str(catalog), "PIXELPIPE_TEST_MODE": "true"}
        server = Server(root / "data", env).start(timeout_s=90)
        yield server
    finally:
        if server is not None:
            server.stop()
        stop_pid(fakes)


def _percent(page: Any, where: str) -> int:
    value = page.locator(f"{where} .progress").get_attribute("aria-valuenow")
    assert value is not None, "the bar shows no percent"
    return int(value)


def _panel_on_top(page: Any, where: str) -> bool:
    """The panel is painted over the preview: at its title the topmost element is the panel's
    (the preview ignores the pointer, so it is made to take it for the look)."""
    return bool(
        page.evaluate(
            """(where) => {
              const panel = document.querySelector(where + ' .live-panel');
              const preview = document.querySelector(where + ' .live-preview');
              const r = panel.querySelector('.live-title').getBoundingClientRect();
              preview.style.pointerEvents = 'auto';
              const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
              preview.style.pointerEvents = '';
              return panel.contains(hit);
            }""",
            where,
        )
    )


def _fits(page: Any, where: str) -> None:
    """Nothing wider than the viewport; the panel inside its canvas."""
    found = page.evaluate(
        """(where) => {
          const c = document.querySelector(where + ' .live-canvas').getBoundingClientRect();
          const p = document.querySelector(where + ' .live-panel').getBoundingClientRect();
          return {page: document.documentElement.scrollWidth - innerWidth,
                  left: p.left - c.left, right: c.right - p.right,
                  top: p.top - c.top, bottom: c.bottom - p.bottom};
        }""",
        where,
    )
    assert found["page"] <= 0 and min(found["left"], found["right"]) >= 0, found
    assert min(found["top"], found["bottom"]) >= 0, found


def _running_view(page: Any, where: str) -> None:
    """The live view of a synchronous run: backend named, the submit done and the run the current
    step, its percent on the step and the bar."""
    expect(page.locator(f"{where} .live-title")).to_have_text("Generating on sd_box")
    run = page.locator(f"{where} .step[data-state='current']")
    expect(run).to_have_attribute("data-step", "waiting")
    expect(run.locator(".step-label")).to_have_text("Waiting on sd_box")
    expect(run.locator(".step-note")).to_have_text(re.compile(r"^\d+%$"))
    submit = page.locator(f"{where} .step[data-step='submitting']")
    expect(submit).to_have_attribute("data-state", "done")


def test_a1111_run_shows_percent_preview_and_the_line(
    a1111_server: Server,
    new_page: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    base = a1111_server.url
    desk = new_page(width=1366, height=900)
    desk.goto(base + "/")
    desk.locator("#model-list input[value='sd-house']").check()
    desk.get_by_label("Prompt", exact=True).fill("a heron standing in a misty lake at dawn")
    desk.get_by_role("button", name="Generate", exact=True).click()
    expect(desk).to_have_url(re.compile(r"/\?job=gen_"))
    first_id = desk.url.rsplit("=", 1)[1]

    # the first job runs: still `submitting` (A1111 answers at the end), yet generating
    _running_view(desk, "#stage")
    job = httpx.get(f"{base}/v1/generations/{first_id}", timeout=5).json()
    assert job["status"] == "submitting", job["status"]
    second = generate_via_api(base, prompt="a fox in tall grass", model="sd-house", seed=5)

    # the percent rises, on the bar and the current step
    before = _percent(desk, "#stage")
    desk.wait_for_function(
        "(p) => +document.querySelector('#stage .progress').getAttribute('aria-valuenow') > p",
        arg=before,
    )
    note = desk.locator("#stage .step[data-state='current'] .step-note").inner_text()
    assert int(note.rstrip("%")) > before, note
    # the server's live preview behind the panel, which stays on top
    preview = desk.locator("#stage .live-canvas img.live-preview")
    expect(preview).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    desk.wait_for_function("() => document.querySelector('#stage img.live-preview').complete")
    assert _panel_on_top(desk, "#stage")
    _fits(desk, "#stage")
    shot(desk, shots, "live-a1111-running")

    # the second job waits for the backend's one slot: first in line
    phone = new_page(width=PHONE[0], height=PHONE[1], dark=True)
    phone.goto(f"{base}/jobs/{second['id']}")
    line = phone.locator("#job-stage .step[data-step='queued']")
    expect(line).to_have_attribute("data-state", "current")
    expect(line.locator(".step-note")).to_have_text("#1 in line")
    expect(phone.locator("#job-stage .live-title")).to_have_text("Queued")
    _fits(phone, "#job-stage")
    shot(phone, shots, "mobile-live-a1111-in-line")

    # the first one's image, then the second runs: the same live view on the phone
    expect(desk.locator("#stage figure.result img")).to_be_visible()
    assert desk.locator("#stage img.live-preview").count() == 0
    _running_view(phone, "#job-stage")
    expect(phone.locator("#job-stage img.live-preview")).to_have_attribute(
        "src", re.compile(r"^data:image/png;base64,")
    )
    phone.wait_for_function("() => document.querySelector('#job-stage img.live-preview').complete")
    assert _panel_on_top(phone, "#job-stage")
    _fits(phone, "#job-stage")
    shot(phone, shots, "mobile-live-a1111-running")
    expect(phone.locator("#job-stage figure.result img")).to_be_visible(timeout=20_000)

    for job_id in (first_id, second["id"]):
        done = wait_done(base, job_id)
        assert (done["status"], done["provider"]) == ("succeeded", "sd_box"), done
