"""The queue page (/queue) in Chromium against `pixelpipe serve`: running jobs with progress,
waiting ones with positions in order, a paused provider, a quarantined job; raising a priority,
resuming, releasing and cancelling many from the page. Screenshots (desktop and phone) go to
``$PIXELPIPE_WEB_SCREENSHOTS`` when set (``docs/img`` for docs/queue.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve import Server
from tests.web import test_web_ui as ui

browser, shots, new_page, expect, shot = ui.browser, ui.shots, ui.new_page, ui.expect, ui.shot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"PIXELPIPE_PREVIEW_LATENCY_MS": "6000", "PIXELPIPE_QUEUE_POISON_AFTER": "1"}
    with Server(tmp_path_factory.mktemp("queue-page"), env).start(timeout_s=90) as srv:
        yield srv


def _post(base: str, path: str, body: Any = None) -> dict[str, Any]:
    resp = httpx.post(f"{base}{path}", json=body, timeout=10)
    assert resp.status_code < 300, resp.text
    return dict(resp.json())


def _submit(base: str, prompt: str, seed: int, size: str = "512x512") -> str:
    body = {"prompt": prompt, "size": size, "seed": seed}
    return str(_post(base, "/v1/generations", body)["id"])


def _queue(base: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/v1/queue", timeout=10).json())


def _until(check: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _crash_on(server: Server, job_id: str) -> None:
    """A worker that claims ``job_id`` and dies: its lease lapses mid-step (a crash). The claim
    is the store's own (``Leases.claim``), run in a thread: the browser owns this one's loop."""
    from pixelpipe.db import open_database
    from pixelpipe.events.local import LocalNotifier
    from pixelpipe.jobs.sql import SqlJobStore

    async def ghost() -> None:
        url = f"sqlite+aiosqlite:///{(server.data_dir / 'pixelpipe.db').resolve()}"
        store = SqlJobStore(open_database(url), LocalNotifier())
        try:
            for _ in range(100):  # the server's own hand-over gives it back first (paused)
                if await store.claim(job_id, "ghost-worker", lease_s=0.2):
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("never claimed")
        finally:
            await store.db.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, ghost()).result()
    time.sleep(0.4)


def test_queue_page_shows_and_steers_the_queue(server: Server, new_page: Any, shots: Path) -> None:
    base = server.url
    # a few finished jobs first: their service times give the waiting ones an ETA (at another
    # size: reading these jobs while they ran kept "no median yet" for their size a while)
    for job_id in [_submit(base, f"a paper crane {i}", 90 + i, "256x256") for i in range(3)]:
        ui.wait_done(base, job_id, timeout_s=60)
    # a poison job: claimed by a worker that "crashes", quarantined when the provider resumes
    _post(base, "/v1/admin/queue/pauses/preview", {"reason": "GPU driver upgrade"})
    poison = _submit(base, "a cursed teapot", 1)
    _crash_on(server, poison)
    assert httpx.delete(f"{base}/v1/admin/queue/pauses/preview").json()["resumed"] is True
    _until(lambda: [j["id"] for j in _queue(base)["held"]] == [poison], "never quarantined")

    running = [_submit(base, f"a lighthouse at dusk {i}", 10 + i) for i in range(2)]
    _until(lambda: sum(len(ln["running"]) for ln in _queue(base)["lines"]) == 2, "not running")
    _post(base, "/v1/admin/queue/pauses/preview", {"reason": "GPU driver upgrade"})
    waiting = [_submit(base, f"a red fox in the snow {i}", 20 + i) for i in range(4)]
    _until(lambda: _queue(base)["lines"][0]["waiting_total"] == 4, "not waiting")

    for width, height, name in ((1366, 900, "queue-desktop"), (390, 844, "queue-phone")):
        page = new_page(width=width, height=height)
        page.goto(f"{base}/queue")
        line = page.locator("section.queue-line[data-target=preview]")
        expect(line.locator(".tag", has_text="Paused")).to_be_visible()
        expect(line.locator("li.queue-job")).to_have_count(6)
        positions = line.locator("li.queue-job:not(.is-running) .queue-pos").all_inner_texts()
        assert positions == ["#1", "#2", "#3", "#4"]
        etas = line.locator("li.queue-job:not(.is-running) .queue-eta").all_inner_texts()
        assert all(e.strip().endswith("s") for e in etas), etas  # measured: "12 s"
        expect(page.locator("#queue-held-list li", has_text=poison)).to_be_visible()
        shot(page, shots, name, full=True)
        page.close()

    page = new_page(width=1366, height=900)
    page.goto(f"{base}/queue")
    last = page.locator(f"li.queue-job[data-id='{waiting[3]}']")
    for _ in range(3):  # 6 -> 9: it runs first now
        last.get_by_role("button", name=f"Raise priority of {waiting[3]}").click()
        page.wait_for_timeout(300)
    expect(page.locator("li.queue-job:not(.is-running)").first).to_have_attribute(
        "data-id", waiting[3]
    )
    page.locator(f"#sel-{waiting[0]}").check()
    page.locator(f"#sel-{waiting[1]}").check()
    page.get_by_role("button", name="Cancel selected (2)").click()
    expect(page.locator(f"li.queue-job[data-id='{waiting[0]}']")).to_have_count(0)
    for job_id in waiting[:2]:
        assert httpx.get(f"{base}/v1/generations/{job_id}").json()["status"] == "canceled"

    page.get_by_role("button", name="Release").click()
    expect(page.locator("#queue-held")).to_be_hidden()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("section.queue-line .tag", has_text="Paused")).to_have_count(0)
    _until(lambda: _queue(base)["lines"][0]["waiting_total"] == 0, "resumed jobs never ran")
    for job_id in [*running, waiting[2], waiting[3], poison]:
        ui.wait_done(base, job_id, timeout_s=60)
