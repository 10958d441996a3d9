"""The moderation page (``/moderation``) in Debian's Chromium through Playwright, against
``pixelpipe serve`` with the in-memory moderator (``PIXELPIPE_MODERATION_URL=memory://``): prompts
refused by the blocklist and by moderation show up per day and key, the page keeps its strict CSP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve import Server

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("PIXELPIPE_CHROMIUM", "/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the machine
    pytest.skip(f"Chromium not found at {CHROMIUM}", allow_module_level=True)
expect = sync_api.expect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"PIXELPIPE_MODERATION_URL": "memory://"}
    with Server(tmp_path_factory.mktemp("moderation-page") / "data", env) as srv:
        yield srv


def test_the_page_lists_refused_prompts_per_day_and_key(server: Server) -> None:
    page_html = httpx.get(f"{server.url}/moderation", timeout=10)
    assert page_html.status_code == 200 and "style=" not in page_html.text
    assert 'href="/moderation"' in httpx.get(f"{server.url}/", timeout=10).text  # linked
    for prompt in ("a beheading scene", "a duel [mod:violence]", "a storm [mod:violence]"):
        answer = httpx.post(f"{server.url}/v1/generations", json={"prompt": prompt}, timeout=10)
        assert answer.status_code == 422 and answer.json()["code"] == "prompt_blocked"
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page: Any = browser.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{server.url}/moderation")
        rows = page.locator("#moderation-rows tr")
        expect(rows).to_have_count(1)  # one day, no key, prompts refused
        expect(rows.first).to_contain_text("Prompt refused")
        expect(rows.first.locator("td").nth(3)).to_have_text("3")
        expect(page.locator("#moderation-count")).to_have_text("3")
        expect(page.locator("#moderation-empty")).to_be_hidden()
        browser.close()
    assert not problems, problems
