"""The gallery page's curation in Chromium against a real `pixelpipe serve`: favourite stars, a
board made from a selection, the boards sidebar, filters and sort (and a bad filter's message),
bulk download of a real zip and bulk delete; at desktop and phone width. Browser fixtures are
tests/web/test_web_ui.py's; screenshots for the docs: ``PIXELPIPE_WEB_SCREENSHOTS=docs/img``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve import Server
from tests.web import test_web_ui as ui

browser, shots, new_page = ui.browser, ui.shots, ui.new_page
expect, shot, generate_via_api, wait_done = ui.expect, ui.shot, ui.generate_via_api, ui.wait_done

pytestmark = pytest.mark.browser

PROMPTS = [
    "a lighthouse on a cliff at dusk",
    "a red fox in fresh snow",
    "a koi pond seen from above",
    "a neon street in the rain",
    "an owl on a mossy branch",
    "a desert road at noon",
    "a bowl of ramen, steam rising",
    "a paper boat on a puddle",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("gallery-web") / "srv").start(timeout_s=90)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def made(server: Server) -> list[dict[str, Any]]:
    """Eight finished images, oldest first."""
    jobs = []
    for i, prompt in enumerate(PROMPTS):
        job = generate_via_api(server.url, prompt=prompt, model="preview", size="512x512", seed=i)
        jobs.append(wait_done(server.url, job["id"]))
    return jobs


def card(page: Any, job: dict[str, Any]) -> Any:
    return page.locator(f"#gallery li[data-id='{job['id']}']")


def test_curate_on_the_desktop(
    server: Server, made: list[dict[str, Any]], new_page: Any, shots: Path
) -> None:
    page = new_page(width=1360, height=900)
    page.goto(server.url + "/gallery")
    expect(page.locator("#gallery .g-card")).to_have_count(len(PROMPTS))

    # a star marks a favourite at once; the sidebar counts it
    fox, owl, koi = made[6], made[4], made[2]  # fox: the favourite (top row)
    card(page, fox).locator(".g-fav").click()
    expect(card(page, fox).locator(".g-fav")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#fav-count")).to_have_text("1")
    assert httpx.get(server.url + "/v1/favourites").json()["data"] == [fox["id"]]

    # select two, make a board from the selection
    for job in (owl, koi):
        card(page, job).locator(".g-select input").check()
    expect(page.locator("#select-count")).to_have_text("2 selected")
    page.select_option("#select-board", "__new")
    page.fill("#board-name-input", "Calm scenes")
    page.click("#board-name-save")
    expect(page.locator("#boards-list .board-link")).to_have_count(1)
    expect(page.locator("#boards-list .board-count")).to_have_text("2")
    page.click("#more-toggle")
    expect(page.locator("#more-filters")).to_be_visible()
    shot(page, shots, "gallery-desktop")

    # the board's view: only its images, with rename and delete
    page.click("#boards-list .board-link")
    expect(page.locator("#board-head")).to_be_visible()
    expect(page.locator("#gallery .g-card")).to_have_count(2)
    assert "board=brd_" in page.url
    # favourites view
    page.click("#views-list a[data-view='favourites']")
    expect(page.locator("#gallery .g-card")).to_have_count(1)
    expect(card(page, fox)).to_be_visible()
    page.click("#views-list a[data-view='all']")
    expect(page.locator("#gallery .g-card")).to_have_count(len(PROMPTS))

    # sort and search narrow and order the list
    page.select_option("#sort", "oldest")
    expect(page.locator("#gallery li.g-item").first).to_have_attribute("data-id", made[0]["id"])
    page.fill("#q", "red fox")
    expect(page.locator("#gallery .g-card")).to_have_count(1)
    expect(card(page, made[1])).to_be_visible()
    page.fill("#q", "")
    expect(page.locator("#gallery .g-card")).to_have_count(len(PROMPTS))

    # a bad cost is refused in the page; a bad date from the URL shows the server's message
    page.fill("#cost-min", "abc")
    page.click("#more-apply")
    expect(page.locator("#filter-error")).to_contain_text("number of dollars")
    page.goto(server.url + "/gallery?since=yesterday")
    expect(page.locator("#gallery-empty")).to_contain_text("YYYY-MM-DD")


def test_bulk_download_and_delete(
    server: Server, made: list[dict[str, Any]], new_page: Any, tmp_path: Path
) -> None:
    page = new_page(width=1360, height=900)
    page.goto(server.url + "/gallery")
    expect(page.locator("#gallery .g-card")).to_have_count(len(PROMPTS))
    chosen = made[5:8]
    for job in chosen:
        card(page, job).locator(".g-select input").check()
    with page.expect_download() as info:
        page.click("#select-download")
    path = tmp_path / "sel.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"))
        images = [n for n in zf.namelist() if n.startswith("images/")]
    assert {g["id"] for g in meta["generations"]} == {j["id"] for j in chosen}
    assert len(images) == 3
    assert {g["prompt"] for g in meta["generations"]} == {j["request"]["prompt"] for j in chosen}

    page.click("#select-delete")
    page.click("#confirm-yes")
    for job in chosen:
        expect(card(page, job)).to_have_count(0)
    expect(page.locator("#select-bar")).to_be_hidden()
    for job in chosen:
        assert httpx.get(f"{server.url}/v1/generations/{job['id']}").status_code == 404


def test_the_phone_layout(
    server: Server, made: list[dict[str, Any]], new_page: Any, shots: Path
) -> None:
    page = new_page(width=390, height=844)
    page.goto(server.url + "/gallery")
    expect(page.locator("#gallery .g-card").first).to_be_visible()
    cards = page.locator("#gallery li.g-item")
    cards.nth(0).locator(".g-select input").check()
    cards.nth(1).locator(".g-select input").check()
    expect(page.locator("#select-bar")).to_be_visible()
    bar = page.locator("#select-bar").bounding_box()
    assert bar is not None and bar["x"] >= 0 and bar["x"] + bar["width"] <= 390
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways: {width}px"
    delete = page.locator("#select-delete")
    expect(delete).to_have_accessible_name("Delete")
    shot(page, shots, "gallery-phone")


def test_a_board_in_the_dark_theme(
    server: Server, made: list[dict[str, Any]], new_page: Any, shots: Path
) -> None:
    board = httpx.post(f"{server.url}/v1/boards", json={"name": "Night"}, timeout=5).json()
    ids = [j["id"] for j in made[:5]]
    httpx.post(f"{server.url}/v1/boards/{board['id']}/images", json={"ids": ids}, timeout=5)
    httpx.post(f"{server.url}/v1/favourites", json={"ids": ids[:2]}, timeout=5)
    page = new_page(width=1360, height=900, dark=True)
    page.goto(f"{server.url}/gallery?board={board['id']}&sort=oldest")
    expect(page.locator("#gallery .g-card")).to_have_count(5)
    expect(page.locator("#board-title-text")).to_have_text("Night")
    expect(page.locator("#sort")).to_have_value("oldest")
    expect(page.locator("#boards-list a[aria-current='page'] .board-name")).to_have_text("Night")
    expect(page.locator("#gallery .g-fav.on")).to_have_count(2)
    shot(page, shots, "gallery-board-dark")

    page.click("#board-rename")
    page.fill("#board-name-input", "Night walks")
    page.click("#board-name-save")
    expect(page.locator("#board-title-text")).to_have_text("Night walks")
    page.click("#board-delete")
    page.click("#confirm-yes")
    expect(page.locator("#board-head")).to_be_hidden()
    expect(page.locator("#boards-list a[data-board]")).not_to_contain_text(["Night walks"])
    assert httpx.get(f"{server.url}/v1/generations/{ids[0]}", timeout=5).status_code == 200
