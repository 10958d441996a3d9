"""The web page with API keys on: the key is asked for once, kept in the browser, sent as a header.

No cookie is set and the server never puts a key (or any secret) in a page: the user pastes one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.serve import CLI, Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

sync_api = pytest.importorskip("playwright.sync_api")
web = pytest.importorskip("tests.web.test_web_ui")  # skips where Chromium is missing
expect = sync_api.expect


def test_page_asks_for_a_key_keeps_it_in_local_storage_and_generates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"PIXELPIPE_DATA_DIR": str(data)}
    made = subprocess.run(
        [*CLI, "keys", "create", "--name", "browser", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    key = json.loads(made.stdout)["key"]
    native: list[str] = []

    with (
        Server(data) as srv,
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=web.CHROMIUM, args=web.CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
            page = ctx.new_page()
            page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
            page.goto(srv.url + "/")
            # one dialog, however many requests were refused; it says what a key is, where to
            # get one, where it is kept and how to forget it
            dialog = page.get_by_role("dialog", name="API key needed")
            expect(dialog).to_be_visible(timeout=30_000)
            expect(page.get_by_role("dialog")).to_have_count(1)
            for words in ("pixelpipe keys create", "pp_", "stays in this browser", "Forget"):
                expect(dialog).to_contain_text(words)
            field = dialog.get_by_label("API key")
            expect(field).to_be_focused()  # keyboard: type, Enter
            expect(field).to_have_attribute("type", "password")
            field.fill("not-a-key")
            field.press("Enter")
            expect(dialog.locator("#api-key-error")).to_contain_text("start with pp_")
            expect(dialog).to_be_visible()
            box = dialog.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            shots = os.environ.get("PIXELPIPE_WEB_SCREENSHOTS")  # refreshes docs/screenshots
            if shots:
                page.screenshot(path=str(Path(shots) / "key-dialog.png"), animations="disabled")
            field.fill(key)
            field.press("Enter")
            expect(dialog).to_be_hidden()
            # the page is ready once the catalog (which needs the key) is on it
            expect(page.locator("#model-list input").first).to_be_attached(timeout=30_000)
            page.get_by_label("Prompt", exact=True).fill("a lighthouse, with a key")
            page.get_by_role("button", name="Generate", exact=True).click()
            img = page.locator("#stage figure.result img")
            expect(img).to_be_visible(timeout=30_000)
            expect(img).to_have_attribute("src", re.compile(rf"^{re.escape(srv.url)}/v1/images/"))
            stored = page.evaluate("localStorage.getItem('pixelpipe.apiKey')")
            cookies = ctx.cookies()
            page.reload()
            expect(page.get_by_label("Prompt", exact=True)).to_be_visible()
            expect(page.locator("#model-list input").first).to_be_attached(timeout=30_000)
            expect(page.get_by_role("dialog")).to_have_count(0)  # remembered: not asked again

            # forgetting it (footer button) asks again on the next load; Esc cancels the dialog
            page.get_by_role("button", name="Forget API key").click()
            assert page.evaluate("localStorage.getItem('pixelpipe.apiKey')") is None
            expect(page.get_by_role("button", name="Forget API key")).to_be_hidden()
            page.reload()
            expect(dialog).to_be_visible(timeout=30_000)
            # Esc reaches the dialog once it has the focus (on a loaded CI machine it was
            # pressed before: the key went to the page and the dialog stayed)
            expect(dialog.get_by_label("API key")).to_be_focused()
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()
            # canceled: a request refused afterwards (one still in flight, or the page's own)
            # fails with its 401 instead of reopening the dialog; the user's next click may ask
            refused = page.evaluate(
                "import('/static/js/core.js')"
                ".then((m) => m.api('/v1/models').then(() => 200, (e) => e.status))"
            )
            assert refused == 401
            expect(page.get_by_role("dialog")).to_have_count(0)
            page.get_by_label("Prompt", exact=True).fill("a lighthouse, asked again")
            page.get_by_role("button", name="Generate", exact=True).click()
            expect(dialog).to_be_visible(timeout=30_000)
        finally:
            browser.close()
    assert native == []  # no window.prompt() any more
    assert stored == key and cookies == []
