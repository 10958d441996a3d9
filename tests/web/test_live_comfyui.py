"""A ComfyUI workflow model followed live on the page (issue 15), in Debian's Chromium at desktop
and phone widths. `pixelpipe serve` runs the catalog file that `pixelpipe fake-providers` offers
(``catalog_example``: its ``sdxl-comfy-fake`` model runs the example SDXL workflow on the fake
ComfyUI at BASE/comfyui), the fake slowed through its control endpoint so a run takes ~5 s with a
denoising preview at every step.

On the desktop: the job's live view says "Generating on fake_comfy", its percent rises, and the
preview — a different picture as it forms — shows behind the panel, which stays on top and
readable; then the final image. On the phone (dark): ComfyUI is busy with someone else's prompt,
so the job, already sent, waits in ComfyUI's own queue — "In line on fake_comfy", "#1 in line" —
then runs with its percent and preview, then its image."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelpipe.fakes.server import EXAMPLE_WORKFLOW, catalog_example
from tests.support.serve import Server, start_fake_providers, stop_pid
from tests.web.test_live_selfhosted import _fits, _panel_on_top, _percent
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

MODEL = "sdxl-comfy-fake"
BACKEND = "fake_comfy"
STEP_S = 0.15  # the example's 30 steps: 4.5 s a run
PHONE = (390, 844)


@pytest.fixture(scope="module")
def comfy_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """`pixelpipe serve` on the fakes' catalog example; (server, BASE/comfyui)."""
    root = tmp_path_factory.mktemp("comfyui")
    fakes, url = start_fake_providers(root / "fakes.log")
    server = None
    try:
        comfy = f"{url}/comfyui"
        httpx.post(f"{comfy}/_control", json={"step_s": STEP_S}, timeout=5).raise_for_status()
        catalog = root / "catalog.toml"
        catalog.write_text(httpx.get(url + "/", timeout=5).json()["catalog_example"])
        assert catalog.read_text() == catalog_example(url)
        env = {"PIXELPIPE_CATALOG_PATH": str(catalog), "PIXELPIPE_TEST_MODE": "true"}
        server = Server(root / "data", env).start(timeout_s=90)
        yield server, comfy
    finally:
        if server is not None:
            server.stop()
        stop_pid(fakes)


def _running(page: Any, where: str) -> None:
    """Sent to ComfyUI and running there: the backend named, its percent on the current step."""
    expect(page.locator(f"{where} .live-title")).to_have_text(f"Generating on {BACKEND}")
    run = page.locator(f"{where} .step[data-state='current']")
    expect(run).to_have_attribute("data-step", "waiting")
    expect(run.locator(".step-label")).to_have_text(f"Waiting on {BACKEND}")
    expect(run.locator(".step-note")).to_have_text(re.compile(r"^\d+%$"))
    submit = page.locator(f"{where} .step[data-step='submitting']")
    expect(submit).to_have_attribute("data-state", "done")


def _preview_forms(page: Any, where: str) -> None:
    """The preview behind the panel is a decoded JPEG, then another one: the image forming."""
    preview = page.locator(f"{where} .live-canvas img.live-preview")
    expect(preview).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))
    first = preview.get_attribute("src")
    page.wait_for_function(
        """([where, first]) => {
          const img = document.querySelector(where + ' img.live-preview');
          return img && img.getAttribute('src') !== first && img.complete && img.naturalWidth > 0;
        }""",
        arg=[where, first],
    )
    assert _panel_on_top(page, where)
    _fits(page, where)


def _percent_rises(page: Any, where: str) -> None:
    before = _percent(page, where)
    page.wait_for_function(
        """([where, p]) => +document.querySelector(where + ' .progress')
              .getAttribute('aria-valuenow') > p""",
        arg=[where, before],
    )
    note = page.locator(f"{where} .step[data-state='current'] .step-note").inner_text()
    assert int(note.rstrip("%")) > before, note


def _drawn_preview(page: Any, where: str) -> dict[str, float]:
    """Where the preview's picture is drawn (its box as ``object-fit`` places it), in the page."""
    box: dict[str, float] = page.evaluate(
        """(where) => {
          const img = document.querySelector(where + ' img.live-preview');
          const r = img.getBoundingClientRect();
          const fit = getComputedStyle(img).objectFit;
          const pick = fit === 'cover' ? Math.max : Math.min;
          const k = pick(r.width / img.naturalWidth, r.height / img.naturalHeight);
          const w = img.naturalWidth * k, h = img.naturalHeight * k;
          return {x: r.left + (r.width - w) / 2, y: r.top + (r.height - h) / 2, w, h};
        }""",
        where,
    )
    return box


def _same_place(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(abs(a[k] - b[k]) <= 0.03 * max(a["w"], a["h"]) for k in ("x", "y", "w", "h"))


def _someone_elses_prompt(comfy: str, steps: int) -> None:
    """ComfyUI busy with a prompt queued by another client (its own web page, say)."""
    graph = json.loads(EXAMPLE_WORKFLOW.read_text())
    graph["3"]["inputs"]["steps"] = steps
    body = {"prompt": graph, "client_id": "someone-else"}
    httpx.post(f"{comfy}/prompt", json=body, timeout=5).raise_for_status()


def test_comfyui_run_shows_percent_and_the_preview_forming(
    comfy_stack: tuple[Server, str],
    new_page: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    server, comfy = comfy_stack
    base = server.url
    desk = new_page(width=1366, height=900)
    desk.goto(base + "/")
    desk.locator(f"#model-list input[value='{MODEL}']").check()
    desk.get_by_label("Prompt", exact=True).fill("a heron standing in a misty lake at dawn")
    desk.get_by_role("button", name="Generate", exact=True).click()
    expect(desk).to_have_url(re.compile(r"/\?job=gen_"))
    first_id = desk.url.rsplit("=", 1)[1]

    _running(desk, "#stage")
    _percent_rises(desk, "#stage")
    _preview_forms(desk, "#stage")
    shot(desk, shots, "live-comfyui-running")
    forming = _drawn_preview(desk, "#stage")
    final = desk.locator("#stage figure.result img")
    expect(final).to_be_visible()
    assert desk.locator("#stage img.live-preview").count() == 0
    # the image forms where it then shows, at its size: neither cropped nor zoomed
    box = final.bounding_box()
    assert box is not None
    shown = {"x": box["x"], "y": box["y"], "w": box["width"], "h": box["height"]}
    assert _same_place(forming, shown), (forming, shown)
    shot(desk, shots, "live-comfyui-done")
    done = wait_done(base, first_id)
    assert (done["status"], done["provider"]) == ("succeeded", BACKEND), done

    # ComfyUI busy with someone else's prompt: ours waits in its queue, then runs
    _someone_elses_prompt(comfy, steps=20)
    second = generate_via_api(base, prompt="a fox in tall grass", model=MODEL, seed=5)
    phone = new_page(width=PHONE[0], height=PHONE[1], dark=True)
    phone.goto(f"{base}/jobs/{second['id']}")
    expect(phone.locator("#job-stage .live-title")).to_have_text(f"In line on {BACKEND}")
    expect(phone.locator("#job-status")).to_have_text("In line")  # the badge agrees
    line = phone.locator("#job-stage .step[data-state='current']")
    expect(line).to_have_attribute("data-step", "waiting")
    expect(line.locator(".step-note")).to_have_text("#1 in line")
    _fits(phone, "#job-stage")
    shot(phone, shots, "mobile-live-comfyui-in-line")

    _running(phone, "#job-stage")
    expect(phone.locator("#job-status")).to_have_text("Generating")  # out of ComfyUI's line
    # the first run is history now: the run comes with an estimate of the time left
    expect(phone.locator("#job-stage .live-eta")).to_have_text(
        re.compile(r"^about \d+ (s|min) left$|^almost done$")
    )
    _percent_rises(phone, "#job-stage")
    _preview_forms(phone, "#job-stage")
    shot(phone, shots, "mobile-live-comfyui-running")
    expect(phone.locator("#job-stage figure.result img")).to_be_visible()
    shot(phone, shots, "mobile-live-comfyui-done")
    done = wait_done(base, second["id"])
    assert (done["status"], done["provider"]) == ("succeeded", BACKEND), done
