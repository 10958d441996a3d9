"""The page at desktop and phone sizes: detail layout, model defaults, compare selection, the
gallery lightbox and deleting, driven in Chromium against real servers (tests/web/test_web_ui.py's
fixtures: the preview server and the one pointed at the protocol-faithful fake providers)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve import Server
from tests.web import test_web_ui as ui

# the servers, browser and page fixtures of the main web suite, shared by name
servers, preview_server, fake_server, fakes_url = (
    ui.servers,
    ui.preview_server,
    ui.fake_server,
    ui.fakes_url,
)
browser, shots, new_page = ui.browser, ui.shots, ui.new_page
expect, shot, generate_via_api, wait_done = ui.expect, ui.shot, ui.generate_via_api, ui.wait_done

pytestmark = pytest.mark.browser

DESKTOPS = ((1366, 768), (1920, 1080))
PHONE = (390, 844)


def _finished(base: str, **body: Any) -> dict[str, Any]:
    return wait_done(base, generate_via_api(base, **body)["id"])


def _overflow(page: Any) -> dict[str, float]:
    """How far the detail page's action buttons reach past the side card's content box."""
    return dict(
        page.evaluate(
            """() => {
              const side = document.querySelector('#job-side');
              const box = side.getBoundingClientRect();
              const pad = parseFloat(getComputedStyle(side).paddingRight);
              const acts = [...document.querySelectorAll('#job-side .side-actions > *')];
              const right = Math.max(...acts.map((b) => b.getBoundingClientRect().right));
              return {past_card: right - (box.right - pad),
                      page: document.documentElement.scrollWidth - innerWidth};
            }"""
        )
    )


def test_detail_actions_stay_inside_the_side_card(fake_server: Server, new_page: Any) -> None:
    job = _finished(fake_server.url, prompt="a lighthouse on a cliff at dusk", model="flux-schnell")
    for width, height in DESKTOPS:
        page = new_page(width=width, height=height)
        page.goto(f"{fake_server.url}/jobs/{job['id']}")
        expect(page.locator("#job-stage img")).to_be_visible()
        expect(page.get_by_role("button", name="Delete")).to_be_visible()
        found = _overflow(page)
        assert found["past_card"] <= 0.5 and found["page"] <= 0, (width, found)


def test_phone_detail_has_no_blank_band_under_the_image(
    fake_server: Server, new_page: Any, shots: Path
) -> None:
    job = _finished(fake_server.url, prompt="a bowl of ramen, top-down", model="preview", seed=41)
    page = new_page(width=PHONE[0], height=PHONE[1])
    page.goto(f"{fake_server.url}/jobs/{job['id']}")
    img = page.locator("#job-stage figure.result img")
    expect(img).to_be_visible()
    page.wait_for_function("() => document.querySelector('#job-stage img').complete")
    band = page.evaluate(
        """() => {
          const stage = document.querySelector('#job-stage').getBoundingClientRect();
          const fig = document.querySelector('#job-stage figure.result').getBoundingClientRect();
          const pad = parseFloat(getComputedStyle(document.querySelector('#job-stage')).paddingBottom);
          return stage.bottom - pad - fig.bottom;
        }"""
    )
    assert band <= 1, f"{band:.0f} px blank under the image"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
    found = _overflow(page)
    assert found["past_card"] <= 0.5, found
    shot(page, shots, "mobile-detail", full=True)


def test_compare_starts_with_only_the_models_asked_for(fake_server: Server, new_page: Any) -> None:
    page = new_page()
    page.goto(fake_server.url + "/compare")
    boxes = page.locator("#c-models input[type=checkbox]")
    expect(boxes).to_have_count(ui.catalog_size(fake_server))
    expect(page.locator("#c-models input:checked")).to_have_count(0)  # nothing paid ticked
    expect(page.locator("#c-model-count")).to_contain_text("0 selected")
    for name in ("flux-schnell", "flux-dev", "dall-e-3"):
        page.locator(f"#c-models input[value='{name}']").check()
    checked = page.eval_on_selector_all("#c-models input:checked", "els => els.map(e => e.value)")
    assert sorted(checked) == ["dall-e-3", "flux-dev", "flux-schnell"]  # exactly the three

    # "Compare" from an image: only that image's model is ticked
    page.goto(fake_server.url + "/compare?models=flux-dev&prompt=a%20fox&seed=3")
    expect(boxes).to_have_count(ui.catalog_size(fake_server))
    checked = page.eval_on_selector_all("#c-models input:checked", "els => els.map(e => e.value)")
    assert checked == ["flux-dev"]


def test_default_model_is_the_cheapest_then_the_last_used(
    fake_server: Server, new_page: Any
) -> None:
    page = new_page()
    page.goto(fake_server.url + "/")
    # every model of the catalog (the providers are configured)
    expect(page.locator("#model-list input")).to_have_count(ui.catalog_size(fake_server))
    expect(page.locator("#model-list input:checked")).to_have_value("preview")  # $0, not paid
    expect(page.locator("#estimate-value")).to_have_text("Free")

    page.locator("#model-list input[value='flux-schnell']").check()
    page.get_by_label("Prompt", exact=True).fill("a kite over a beach, last used model")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#stage figure.result img")).to_be_visible()
    page.goto(fake_server.url + "/")
    expect(page.locator("#model-list input:checked")).to_have_value("flux-schnell")
    assert page.evaluate("localStorage.getItem('pp-model')") == "flux-schnell"


def _gallery_of(base: str, n: int) -> tuple[str, list[dict[str, Any]]]:
    """``n`` finished images in a group of their own, oldest first."""
    group = "lb_" + uuid.uuid4().hex[:12]
    jobs = [
        generate_via_api(base, prompt=f"lightbox study {i}", model="preview", seed=i, group=group)
        for i in range(n)
    ]
    return group, [wait_done(base, j["id"]) for j in jobs]


def test_lightbox_steps_through_the_gallery_and_deletes(
    preview_server: Server, new_page: Any, shots: Path
) -> None:
    base = preview_server.url
    group, jobs = _gallery_of(base, 3)
    newest_first = [j["id"] for j in reversed(jobs)]
    page = new_page(width=1366, height=768)
    page.goto(f"{base}/gallery?group={group}")
    cards = page.locator("#gallery .g-card")
    expect(cards).to_have_count(3)

    page.get_by_role("button", name="View larger: lightbox study 2").click()
    box = page.get_by_role("dialog")
    count, img = page.locator("#lb-count"), page.locator("#lb-img")
    expect(box).to_be_visible()
    expect(count).to_have_text("1 of 3")
    expect(page.locator("#lb-prompt")).to_have_text("lightbox study 2")
    expect(img).to_have_attribute("src", re.compile(re.escape(jobs[2]["image"]["url"]) + "$"))
    expect(page.get_by_role("button", name="Previous image")).to_be_disabled()
    page.keyboard.press("ArrowRight")
    expect(count).to_have_text("2 of 3")
    expect(page.locator("#lb-prompt")).to_have_text("lightbox study 1")
    page.keyboard.press("ArrowRight")
    expect(count).to_have_text("3 of 3")
    expect(page.get_by_role("button", name="Next image")).to_be_disabled()
    page.keyboard.press("ArrowLeft")
    expect(count).to_have_text("2 of 3")
    expect(page.locator("#lb-details")).to_have_attribute("href", f"/jobs/{newest_first[1]}")
    shot(page, shots, "lightbox")
    page.keyboard.press("Escape")
    expect(box).to_be_hidden()
    expect(page.get_by_role("button", name="View larger: lightbox study 1")).to_be_focused()

    # delete from the lightbox: asked first; canceling keeps it
    page.get_by_role("button", name="View larger: lightbox study 1").click()
    page.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("alertdialog")
    expect(confirm).to_contain_text("Delete this image?")
    expect(confirm).to_contain_text("cost history")
    page.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(cards).to_have_count(3)
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(cards).to_have_count(2)
    expect(count).to_have_text("2 of 2")  # the next image moved up
    expect(page.locator("#lb-prompt")).to_have_text("lightbox study 0")
    gone = httpx.get(f"{base}/v1/generations/{newest_first[1]}", timeout=5)
    assert gone.status_code == 404
    page.get_by_role("button", name="Close (Esc)").click()
    expect(box).to_be_hidden()


def test_phone_lightbox_has_big_buttons_and_swipes(
    preview_server: Server, new_page: Any, shots: Path
) -> None:
    base = preview_server.url
    group, _ = _gallery_of(base, 2)
    page = new_page(width=PHONE[0], height=PHONE[1])
    page.goto(f"{base}/gallery?group={group}")
    expect(page.locator("#gallery .g-card")).to_have_count(2)
    page.get_by_role("button", name="View larger: lightbox study 1").click()
    count = page.locator("#lb-count")
    expect(count).to_have_text("1 of 2")
    for name in ("Previous image", "Next image", "Delete", "Close (Esc)"):
        size = page.get_by_role("button", name=name).bounding_box()
        assert size is not None and size["height"] >= 32 and size["width"] >= 32, (name, size)
    nxt = page.get_by_role("button", name="Next image").bounding_box()
    assert nxt is not None and nxt["width"] >= 44  # thumb-sized
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
    page.wait_for_function("() => document.querySelector('#lb-img').complete")
    shot(page, shots, "mobile-lightbox")
    # a swipe to the left shows the next image, to the right the previous one
    stage = page.locator("#lb-stage").bounding_box()
    assert stage is not None
    y = stage["y"] + stage["height"] / 3
    for start, end, want in ((300, 60, "2 of 2"), (60, 300, "1 of 2")):
        page.mouse.move(stage["x"] + start, y)
        page.mouse.down()
        page.mouse.move(stage["x"] + end, y, steps=5)
        page.mouse.up()
        expect(count).to_have_text(want)
    page.get_by_role("button", name="Next image").click()
    expect(count).to_have_text("2 of 2")


def test_delete_from_the_detail_page_after_confirming(
    preview_server: Server, new_page: Any
) -> None:
    base = preview_server.url
    job = _finished(base, prompt="a teapot to delete", model="preview", seed=77)
    page = new_page()
    page.goto(f"{base}/jobs/{job['id']}")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("Delete this generation?")
    page.keyboard.press("Escape")  # Esc cancels
    expect(page.get_by_role("alertdialog")).to_be_hidden()
    assert httpx.get(f"{base}/v1/generations/{job['id']}", timeout=5).status_code == 200
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/gallery$"))
    assert httpx.get(f"{base}/v1/generations/{job['id']}", timeout=5).status_code == 404


def test_gallery_cards_show_whole_model_names(fake_server: Server, new_page: Any) -> None:
    base = fake_server.url
    group = "names_" + uuid.uuid4().hex[:10]
    for model in ("flux-1.1-pro", "gpt-image-1", "preview"):
        wait_done(
            base,
            generate_via_api(base, prompt="a long model name", model=model, seed=4, group=group)[
                "id"
            ],
        )
    for width, height in (*DESKTOPS, PHONE):
        page = new_page(width=width, height=height)
        page.goto(f"{base}/gallery?group={group}")
        names = page.locator("#gallery .g-model")
        expect(names).to_have_count(3)
        clipped = page.eval_on_selector_all(
            "#gallery .g-model",
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)",
        )
        assert clipped == [], (width, clipped)
        expect(names.filter(has_text="Offline preview (not AI)")).to_have_count(1)
        expect(names.filter(has_text="GPT Image 1")).to_have_count(1)


def test_a_failed_job_retries_from_its_page_and_the_retry_links_back(
    fake_server: Server, fakes_url: str, new_page: Any
) -> None:
    base = fake_server.url
    httpx.post(f"{fakes_url}/openai/_control", json={"content_policy_next": 1}, timeout=5)
    failed = _finished(base, prompt=f"a harbour at noon {uuid.uuid4().hex[:6]}", model="dall-e-3")
    assert failed["status"] == "failed"
    page = new_page()
    page.goto(f"{base}/jobs/{failed['id']}")
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_visible()
    page.get_by_role("button", name="Retry", exact=True).click()
    expect(page).not_to_have_url(re.compile(re.escape(failed["id"]) + "$"))
    expect(page.locator("#job-stage img")).to_be_visible()  # the retry ran, and succeeded
    new_id = page.url.rsplit("/", 1)[-1]
    retried = httpx.get(f"{base}/v1/generations/{new_id}", timeout=5).json()
    assert retried["retry_of"] == failed["id"] and retried["status"] == "succeeded"
    assert retried["request"]["seed"] == failed["request"]["seed"]  # the same request
    link = page.locator("#retry-of")
    expect(link).to_have_text(failed["id"])
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_hidden()  # it succeeded
    link.click()
    expect(page).to_have_url(re.compile(re.escape(failed["id"]) + "$"))
