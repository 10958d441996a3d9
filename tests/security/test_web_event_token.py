"""The web page with API keys on follows a running job over SSE (an event token), not by polling."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.serve import CLI, Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

sync_api = pytest.importorskip("playwright.sync_api")
web = pytest.importorskip("tests.web.test_web_ui")  # skips where Chromium is missing
expect = sync_api.expect


def test_the_page_streams_a_running_job_with_a_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"PIXELPIPE_DATA_DIR": str(data), "PIXELPIPE_PREVIEW_LATENCY_MS": "1500"}
    made = subprocess.run(
        [*CLI, "keys", "create", "--name", "browser", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    key = json.loads(made.stdout)["key"]
    streams: list[tuple[str, int]] = []

    def seen(response: Any) -> None:
        if "/events" in response.url and "/v1/events" not in response.url:
            streams.append((response.url, response.status))

    with Server(data, env) as srv, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=web.CHROMIUM, args=web.CHROMIUM_ARGS)
        try:
            ctx = browser.new_context()
            ctx.add_init_script(f"localStorage.setItem('pixelpipe.apiKey', {json.dumps(key)})")
            page = ctx.new_page()
            page.on("response", seen)
            page.goto(srv.url + "/")
            expect(page.locator("#model-list input").first).to_be_attached(timeout=30_000)
            page.get_by_label("Prompt", exact=True).fill("a heron, followed live with a key")
            page.get_by_role("button", name="Generate", exact=True).click()
            img = page.locator("#stage figure.result img")
            expect(img).to_be_visible(timeout=30_000)
        finally:
            browser.close()
    assert streams, "the page never opened the job's event stream"
    assert all("?token=" in url and status == 200 for url, status in streams), streams
