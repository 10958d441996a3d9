"""The web page, driven in Debian's Chromium through Playwright, against `pixelpipe serve`.

Two servers run as subprocesses for the whole module: one on the offline preview provider (with a
latency, so the live status can be watched and a reload can land mid-generation) and one pointed at
the protocol-faithful fake providers (so three real catalog models can be compared).

Screenshots go to ``$PIXELPIPE_WEB_SCREENSHOTS`` when set (``docs/screenshots`` to refresh the
README's), else to a temporary directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve import Server, start_fake_providers, stop_pid

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("PIXELPIPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PREVIEW_LATENCY_MS = 2500
TIMEOUT_MS = 20_000

sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the machine
    pytest.skip(f"Chromium not found at {CHROMIUM}", allow_module_level=True)

expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)


# ---- processes ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both servers (and the fakes), started in parallel: each one takes seconds to import."""
    from pixelpipe.fakes.server import fake_env

    root = tmp_path_factory.mktemp("web")
    preview = Server(root / "preview", {"PIXELPIPE_PREVIEW_LATENCY_MS": str(PREVIEW_LATENCY_MS)})
    started: list[Server] = []
    fakes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []

    def with_fakes() -> Server:
        proc, url = start_fake_providers(root / "fakes.log")  # 90 s: imports crawl when busy
        fakes.append(proc)
        urls.append(url)
        srv = Server(root / "fakes", fake_env(url))
        started.append(srv)
        return srv.start(timeout_s=90)

    def plain() -> Server:
        started.append(preview)
        return preview.start(timeout_s=90)

    try:
        with ThreadPoolExecutor(2) as pool:
            a, b = pool.submit(plain), pool.submit(with_fakes)
            yield {"preview": a.result(), "fakes": b.result(), "fakes_url": urls[0]}
    finally:
        for srv in started:
            srv.stop()
        for proc in fakes:
            stop_pid(proc)


@pytest.fixture(scope="module")
def preview_server(servers: dict[str, Any]) -> Server:
    """Offline preview provider with a latency: the live status can be watched."""
    return servers["preview"]


@pytest.fixture(scope="module")
def fake_server(servers: dict[str, Any]) -> Server:
    """Pointed at the fake Replicate, fal and OpenAI: the whole catalog is available."""
    return servers["fakes"]


@pytest.fixture(scope="module")
def fakes_url(servers: dict[str, Any]) -> str:
    return str(servers["fakes_url"])


# ---- browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("PIXELPIPE_WEB_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Page:
    """A Playwright page that records console errors and CSP violations, for the teardown check."""

    def __init__(self, browser: Any, *, width: int = 1360, height: int = 900, dark: bool = False):
        self.ctx = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme="dark" if dark else "light",
            reduced_motion="reduce",
        )
        self.page = self.ctx.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        text = msg.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(f"CSP: {text}")
        elif msg.type == "error" and "status of 4" not in text and "CHUNKED" not in text:
            self.problems.append(f"console: {text}")

    def close(self) -> None:
        self.ctx.close()
        assert not self.problems, self.problems


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    pages: list[Page] = []

    def make(**kw: Any) -> Any:
        p = Page(browser, **kw)
        pages.append(p)
        return p.page

    yield make
    for p in pages:
        p.close()


def shot(page: Any, shots: Path, name: str, *, full: bool = False) -> None:
    page.wait_for_timeout(150)  # let fade-ins settle
    page.screenshot(path=str(shots / f"{name}.png"), full_page=full, animations="disabled")


def generate_via_api(base: str, **body: Any) -> dict[str, Any]:
    r = httpx.post(f"{base}/v1/generations", json=body, timeout=10)
    assert r.status_code in (200, 202), r.text
    return dict(r.json())


def wait_done(base: str, job_id: str, timeout_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/generations/{job_id}", timeout=5).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"{job_id} did not finish")


# ---- tests --------------------------------------------------------------------------------------


def test_pages_send_a_strict_csp(preview_server: Server) -> None:
    for path in ("/", "/gallery", "/compare", "/jobs/gen_x", "/compare/cmp_x"):
        r = httpx.get(preview_server.url + path, timeout=5)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        # no inline script, no inline style, no inline event handlers
        assert "<script>" not in r.text and "style=" not in r.text
        assert not re.search(r"\son[a-z]+=", r.text)
    assert httpx.get(preview_server.url + "/static/js/main.js", timeout=5).status_code == 200


def test_generate_live_status_then_image_and_counter_moves(
    preview_server: Server, new_page: Any, shots: Path
) -> None:
    page = new_page(height=1000)
    page.goto(preview_server.url + "/")
    expect(page.locator("#cost-images")).to_have_text("0")
    expect(page.locator("#estimate-value")).to_have_text("Free")
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("a red fox curled up in fresh snow, soft morning light")
    page.get_by_role("radio", name="16:9 (1344 by 768 pixels)").check()
    page.get_by_label("Seed", exact=True).fill("7")
    prompt.press("Control+Enter")  # keyboard submit

    panel = page.locator("#stage .live-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".step[data-state='current']")).to_be_visible()
    expect(page.locator("#stage .live-elapsed")).to_contain_text(" s")
    expect(page).to_have_url(re.compile(r"/\?job=gen_"))

    img = page.locator("#stage figure.result img")
    expect(img).to_be_visible()
    expect(img).to_have_attribute(
        "src", re.compile(rf"^{re.escape(preview_server.url)}/v1/images/")
    )
    assert page.evaluate("document.querySelector('#stage figure.result img').naturalWidth") == 1344
    expect(page.locator("#stage .stat-time")).to_have_text(re.compile(r"\d+(\.\d)? s"))
    expect(page.locator("#stage .stat-cost")).to_have_text("Free")
    expect(page.locator("#cost-images")).to_have_text("1")  # the counter moved, live
    expect(page.locator("#recent a")).to_have_count(1)
    shot(page, shots, "generate")

    # the same request again is a cache hit: instant, badged, $0
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#stage .result .tag", has_text="Cached")).to_be_visible()
    expect(page.locator("#stage .stat-time")).to_have_text("instant")


def test_blocked_prompt_shows_the_reason(
    preview_server: Server, new_page: Any, shots: Path
) -> None:
    page = new_page()
    page.goto(preview_server.url + "/")
    prompt = page.get_by_label("Prompt", exact=True)
    generate = page.get_by_role("button", name="Generate", exact=True)
    prompt.fill("a beheading scene")
    # the estimate already warns, before anything is submitted: Generate is off and says why
    expect(page.locator("#estimate-meta")).to_contain_text("will be blocked")
    expect(generate).to_be_disabled()
    reason = page.locator("#prompt-error")
    expect(reason).to_contain_text("This prompt will be blocked")
    expect(reason).to_contain_text("graphic violence")
    expect(prompt).to_have_attribute("aria-invalid", "true")
    expect(generate).to_have_attribute("aria-describedby", "prompt-error")
    prompt.press("Control+Enter")  # the keyboard shortcut is off too: nothing is sent
    expect(page.locator("#stage .empty-stage")).to_be_visible()
    expect(reason).to_be_visible()  # and the reason stays
    expect(prompt).to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/")
    shot(page, shots, "error-blocked")
    prompt.fill("a lighthouse at dawn")  # rephrased: Generate comes back
    expect(generate).to_be_enabled()
    expect(reason).to_be_hidden()
    expect(prompt).not_to_have_attribute("aria-invalid", "true")


def test_gallery_lists_filters_searches_and_opens_details(
    fake_server: Server, new_page: Any, shots: Path
) -> None:
    base = fake_server.url
    a = generate_via_api(
        base, prompt="a lighthouse on a cliff at dusk", model="flux-schnell", seed=424242
    )
    b = generate_via_api(base, prompt="a bowl of ramen, top-down", model="preview", seed=2)
    wait_done(base, a["id"])
    wait_done(base, b["id"])

    page = new_page(height=1000)
    page.goto(base + "/gallery")
    cards = page.locator("#gallery .g-card")
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("a bowl of ramen")  # newest first
    expect(cards.nth(1)).to_contain_text("$0.003")
    expect(cards.nth(1)).to_contain_text("FLUX.1 [schnell]")

    page.get_by_label("Model", exact=True).select_option("flux-schnell")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("lighthouse")
    expect(page).to_have_url(re.compile(r"model=flux-schnell"))
    page.get_by_label("Model", exact=True).select_option("")
    expect(cards).to_have_count(2)

    page.keyboard.press("/")
    page.keyboard.type("ramen")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("ramen")
    page.get_by_label("Search prompts").fill("")
    expect(cards).to_have_count(2)

    # live: a new image appears without reloading
    c = generate_via_api(base, prompt="a hot air balloon over fields", model="preview", seed=3)
    expect(cards).to_have_count(3)
    expect(page.locator(f"#gallery li[data-id='{c['id']}'] img")).to_be_visible()

    # details: every parameter, the key, copy URL, generate again with a new seed
    page.locator(f"#gallery li[data-id='{a['id']}'] a.g-link").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{a['id']}$"))
    side = page.locator("#job-side")
    expect(side).to_contain_text("a lighthouse on a cliff at dusk")
    expect(side.locator("dd", has_text=a["key"][:12])).to_be_visible()
    expect(side).to_contain_text("$0.003")
    expect(side).to_contain_text("1024 × 1024")
    expect(side.locator("dd", has_text=str(a["request"]["seed"]))).to_have_count(1)
    expect(page.get_by_role("button", name="Copy image URL")).to_be_visible()
    expect(page.locator("#job-stage img")).to_be_visible()
    shot(page, shots, "detail")
    page.get_by_role("button", name="Generate again with a new seed").click()
    expect(page).not_to_have_url(re.compile(rf"/jobs/{a['id']}$"))
    expect(page.locator("#job-stage figure.result img")).to_be_visible()
    expect(page.locator("#job-side")).to_contain_text("a lighthouse on a cliff at dusk")
    again_id = page.url.rsplit("/", 1)[1]
    again = httpx.get(f"{base}/v1/generations/{again_id}", timeout=5).json()
    assert again["request"]["seed"] != a["request"]["seed"]
    assert again["request"]["prompt"] == a["request"]["prompt"] and again["model"] == "flux-schnell"


def catalog_size(server: Server) -> int:
    """The models the server offers (GET /v1/models): one card or box each on the page."""
    return len(httpx.get(server.url + "/v1/models", timeout=30).json()["data"])


def test_compare_three_models_side_by_side(fake_server: Server, new_page: Any, shots: Path) -> None:
    base = fake_server.url
    page = new_page(height=980)
    page.goto(base + "/compare")
    models = page.locator("#c-models input[type=checkbox]")
    expect(models).to_have_count(catalog_size(fake_server))  # the catalog is loaded
    page.get_by_label("Prompt", exact=True).fill(
        "a tiny robot watering a bonsai tree, studio light"
    )
    for name, want in (("flux-schnell", True), ("flux-dev", True), ("flux-1.1-pro", True)):
        box = page.locator(f"#c-models input[value='{name}']")
        if box.is_checked() != want:
            box.check()
    checked = page.eval_on_selector_all("#c-models input:checked", "els => els.map(e => e.value)")
    assert sorted(checked) == ["flux-1.1-pro", "flux-dev", "flux-schnell"]
    expect(page.locator("#c-estimate-value")).to_have_text("$0.068")
    page.get_by_label("Seed", exact=True).fill("1234")
    page.get_by_role("button", name="Run comparison").click()

    outcome = page.locator("#compare-results:not([hidden]), #c-prompt-error:not([hidden])")
    expect(outcome.first).to_be_visible()
    assert page.locator("#c-prompt-error").is_hidden(), page.locator("#c-prompt-error").inner_text()
    expect(page).to_have_url(re.compile(r"/compare/cmp_"))
    cols = page.locator("#cmp-grid .cmp-col")
    expect(cols).to_have_count(3)
    for i in range(3):
        expect(cols.nth(i).locator("figure.result img")).to_be_visible()
        expect(cols.nth(i).locator(".cmp-time")).to_have_text(re.compile(r"^\d+(\.\d)? s$"))
        expect(cols.nth(i).locator(".cmp-cost")).to_have_text(re.compile(r"^\$0\.0\d+$"))
    costs = sorted(cols.locator(".cmp-cost").all_inner_texts())
    assert costs == ["$0.003", "$0.025", "$0.04"]
    expect(page.locator("#cmp-summary")).to_contain_text("Cheapest: FLUX.1 [schnell]")
    shot(page, shots, "compare")

    # reopen later: the group is in the URL, and the gallery filters on it
    group = page.url.rsplit("/", 1)[1]
    jobs = httpx.get(f"{base}/v1/generations", params={"group": group}, timeout=5).json()["data"]
    assert {j["request"]["seed"] for j in jobs} == {1234} and len(jobs) == 3
    page.reload()
    expect(cols).to_have_count(3)
    expect(page.locator("#cmp-grid .cmp-col figure.result img")).to_have_count(3)
    page.get_by_role("link", name="In gallery").click()
    expect(page.locator("#gallery .g-card")).to_have_count(3)
    expect(page.locator("#group-chip")).to_be_visible()


def test_phone_width_and_dark_theme(
    fake_server: Server, preview_server: Server, new_page: Any, shots: Path
) -> None:
    phone = new_page(width=390, height=844)
    phone.goto(preview_server.url + "/")
    expect(phone.locator("#cost-counter")).to_be_visible()  # always visible, also on a phone
    expect(phone.locator("#model-list .model-opt")).to_have_count(1)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, shots, "mobile-generate")
    phone.goto(fake_server.url + "/gallery")
    expect(phone.locator("#gallery .g-card").first).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, shots, "mobile-gallery")

    light = new_page(height=1000)
    light.goto(fake_server.url + "/gallery")
    expect(light.locator("#gallery .g-card img").first).to_be_visible()
    expect(light.locator("#gallery img:not(.loaded)")).to_have_count(0)
    shot(light, shots, "gallery")

    dark = new_page(dark=True, height=1000)
    dark.goto(fake_server.url + "/gallery")
    expect(dark.locator("#gallery .g-card img").first).to_be_visible()
    bg = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(11, 13, 19)", bg
    shot(dark, shots, "dark-gallery")
    # the toggle overrides the system preference and is remembered
    dark.get_by_role("button", name="Switch to light theme").click()
    assert dark.evaluate("document.documentElement.dataset.theme") == "light"
    dark.reload()
    assert dark.evaluate("document.documentElement.dataset.theme") == "light"
    dark.get_by_role("button", name="Switch to dark theme").click()
    jobs = httpx.get(f"{fake_server.url}/v1/generations?limit=100", timeout=5).json()["data"]
    group = next((j["group"] for j in jobs if j["group"]), None)
    if group is None:  # this test was run on its own
        group = "cmp_dark"
        made = [
            generate_via_api(fake_server.url, prompt="a robot", model=m, seed=5, group=group)
            for m in ("flux-schnell", "flux-dev", "flux-1.1-pro")
        ]
        for job in made:
            wait_done(fake_server.url, job["id"])
    dark.goto(f"{fake_server.url}/compare/{group}")  # a comparison, reopened
    expect(dark.locator("#cmp-grid figure.result img")).to_have_count(3)
    expect(dark.locator("#cmp-summary")).to_contain_text("Cheapest")
    shot(dark, shots, "dark-compare")


def test_keyboard_only_generate(preview_server: Server, new_page: Any) -> None:
    page = new_page()
    page.goto(preview_server.url + "/gallery")
    # the first Tab reaches the skip link, which jumps over the navigation
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()

    page.goto(preview_server.url + "/")
    expect(page.get_by_label("Prompt", exact=True)).to_be_focused()  # ready to type
    page.keyboard.type("a quiet harbour at dawn")
    # tab through to the model radios: every control is reachable and labelled
    labelled = page.evaluate(
        """() => [...document.querySelectorAll('#gen-form input, #gen-form select, #gen-form textarea')]
             .filter(el => el.offsetParent !== null)
             .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
             .map(el => el.id || el.name)"""
    )
    assert labelled == [], labelled
    page.locator("#generate-btn").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#stage figure.result img")).to_be_visible()


def test_gallery_pages_with_the_cursor(preview_server: Server, new_page: Any) -> None:
    base = preview_server.url
    before = httpx.get(f"{base}/v1/generations", params={"limit": 100}, timeout=5).json()["data"]
    for i in range(26 - len(before)):
        generate_via_api(base, prompt=f"pattern study number {i}", model="preview", size="256x256")
    page = new_page()
    page.goto(base + "/gallery")
    cards = page.locator("#gallery .g-card")
    expect(cards).to_have_count(24)  # one page
    page.locator("#sentinel").scroll_into_view_if_needed()  # infinite scroll fetches the next
    expect(cards).to_have_count(26)
    expect(page.locator("#gallery-end")).to_be_visible()
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()


def test_provider_trouble_in_plain_words(
    fake_server: Server, fakes_url: str, new_page: Any, shots: Path
) -> None:
    def control(fake: str, **behaviour: Any) -> None:
        httpx.post(f"{fakes_url}/{fake}/_control", json=behaviour, timeout=5).raise_for_status()

    page = new_page(height=1000)
    page.goto(fake_server.url + "/")
    prompt = page.get_by_label("Prompt", exact=True)

    # both FLUX providers answer 429 for a while: the live status says so, and it retries itself
    for fake in ("replicate", "fal"):
        control(fake, rate_limit_next=2, retry_after="2")
    page.locator("#model-list input[value='flux-schnell']").check()
    prompt.fill("paper lanterns over a river at night")
    page.get_by_role("button", name="Generate", exact=True).click()
    note = page.locator("#stage .live-note.warn")
    expect(note).to_contain_text(re.compile(r"rate limit", re.IGNORECASE))
    shot(page, shots, "error-rate-limited")
    expect(page.locator("#stage figure.result img")).to_be_visible()

    # the provider's content policy refuses the prompt after submission
    control("openai", content_policy_next=1)
    page.locator("#model-list input[value='dall-e-3']").check()
    prompt.fill("a portrait of a famous politician")
    page.get_by_role("button", name="Generate", exact=True).click()
    alert = page.locator("#stage [role=alert]")
    expect(alert).to_contain_text("content policy")
    expect(alert).to_contain_text("Rephrase the prompt")
    shot(page, shots, "error-provider-rejected")


def test_reloading_a_job_page_mid_generation_resumes_live_status(
    fake_server: Server, fakes_url: str, new_page: Any
) -> None:
    # a slow model run, so that the reload surely lands while the provider is still working
    httpx.post(f"{fakes_url}/replicate/_control", json={"latency_s": 60}, timeout=5)
    try:
        job = generate_via_api(
            fake_server.url, prompt="a paper boat on a pond", model="flux-schnell", seed=99
        )
        page = new_page()
        page.goto(f"{fake_server.url}/jobs/{job['id']}")
        waiting = page.locator("#job-stage .step[data-step='waiting'][data-state='current']")
        # submitting can take a while on a loaded machine (Prefer: wait at the fake provider)
        expect(waiting).to_be_visible(timeout=20_000)
        page.reload()
        # after the reload the stream replays from the start and keeps following
        expect(waiting).to_be_visible(timeout=20_000)
        expect(page.locator("#job-stage .live-elapsed")).to_contain_text(" s")
        expect(page.locator("#job-side .job-title")).to_contain_text("Generating")

        # the generate view keeps the job in its URL too: a reload resumes it and refills the form
        page.goto(f"{fake_server.url}/?job={job['id']}")
        expect(page.locator("#stage .live-panel")).to_be_visible()
        expect(page.get_by_label("Prompt", exact=True)).to_have_value("a paper boat on a pond")
        page.reload()
        expect(
            page.locator("#stage .step[data-step='waiting'][data-state='current']")
        ).to_be_visible()
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("#stage [role=alert]")).to_contain_text("Canceled")
    finally:
        httpx.post(f"{fakes_url}/replicate/_control", json={"latency_s": 1.0}, timeout=5)
