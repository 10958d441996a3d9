"""The web page with API keys on: the key is asked for once, kept in the browser, sent as a header.

No cookie is set and the server never puts a key (or any secret) in a page: the user pastes one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

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
    prompts: list[str] = []

    def answer(dialog: Any) -> None:
        prompts.append(dialog.message)
        dialog.accept(key)

    with (
        Server(data) as srv,
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=web.CHROMIUM, args=web.CHROMIUM_ARGS)
        try:
            ctx = browser.new_context()
            page = ctx.new_page()
            page.on("dialog", answer)
            page.goto(srv.url + "/")
            # the page is ready once the catalog (which needs the key) is on it: filling the
            # prompt earlier races the page's own start-up on a loaded machine
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
        finally:
            browser.close()
    assert len(prompts) == 1 and "API key" in prompts[0]  # asked once, then remembered
    assert stored == key and cookies == []
