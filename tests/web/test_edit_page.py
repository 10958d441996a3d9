"""Edits on the page (issue 16), driven in Chromium against a real `pixelpipe serve`: input images
by file chooser, drop and paste, the gallery picker and "Edit this"; the mask brush (the mask the
server stored is decoded: the image's size, transparent where painted, opaque elsewhere, and the
preview provider edited exactly there); before / after and the lineage chain on the job page.

The server is pointed at the protocol-faithful fake providers, so its catalog has models that take
no input images next to the offline preview (which takes 16 and a mask at $0). The browser, page
and screenshot fixtures are tests/web/test_web_ui.py's; screenshots for the docs:
``PIXELPIPE_WEB_SCREENSHOTS=docs/img``.
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from tests.support.serve import Server, start_fake_providers, stop_pid
from tests.web import test_web_ui as ui

browser, shots, new_page = ui.browser, ui.shots, ui.new_page
expect, shot, generate_via_api, wait_done = ui.expect, ui.shot, ui.generate_via_api, ui.wait_done

pytestmark = pytest.mark.browser

DESKTOP = (1280, 800)
PHONE = (390, 844)
SIDE = 256  # the input: square, so the 1:1 result is the input scaled 4x (no crop)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from pixelpipe.fakes.server import fake_env

    root = tmp_path_factory.mktemp("edit-web")
    fakes: list[subprocess.Popen[bytes]] = []
    srv: Server | None = None
    try:
        proc, url = start_fake_providers(root / "fakes.log")
        fakes.append(proc)
        srv = Server(root / "srv", fake_env(url)).start(timeout_s=90)
        yield srv
    finally:
        if srv is not None:
            srv.stop()
        for proc in fakes:
            stop_pid(proc)


def photo(colour: str = "teal", side: int = SIDE) -> bytes:
    """A square PNG: a colour with a yellow band, so a crop or a flip would show."""
    img = Image.new("RGB", (side, side), colour)
    img.paste((240, 200, 40), (0, side * 3 // 8, side, side * 5 // 8))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def same_object(url: str) -> re.Pattern[str]:
    """A signed URL of the same stored object (its signature may be a newer one)."""
    return re.compile("^" + re.escape(url.split("?")[0]) + r"\?")


def decode(url: str) -> Image.Image:
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200, r.text
    img = Image.open(io.BytesIO(r.content))
    img.load()
    return img


def paint_box(page: Any, box: tuple[float, float, float, float]) -> None:
    """Paint the fraction box (x0, y0, x1, y1) of the mask canvas with horizontal strokes."""
    canvas = page.locator("#mask-canvas")
    canvas.evaluate("el => el.scrollIntoView({ block: 'center' })")  # clear of the sticky footer
    x0, y0, x1, y1 = box
    size = float(page.locator("#mask-size").input_value())
    y = y0 * canvas.bounding_box()["height"]
    while True:
        c = canvas.bounding_box()
        if y > y1 * c["height"]:
            break
        page.mouse.move(c["x"] + x0 * c["width"], c["y"] + y)
        page.mouse.down()
        page.mouse.move(c["x"] + x1 * c["width"], c["y"] + y, steps=6)
        page.mouse.up()
        y += size / 2


def add_by_file_chooser(page: Any, data: bytes, name: str = "photo.png") -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Choose files").click()
    chooser.value.set_files(files=[{"name": name, "mimeType": "image/png", "buffer": data}])


def ready_inputs(page: Any, n: int) -> list[str]:
    items = page.locator("#input-list li")
    expect(items).to_have_count(n)
    expect(page.locator("#input-list li.is-ready")).to_have_count(n)
    return [items.nth(i).get_attribute("data-ref") or "" for i in range(n)]


def scroll_to(page: Any, selector: str) -> None:
    page.locator(selector).evaluate("el => el.scrollIntoView({ block: 'start' })")
    page.wait_for_timeout(100)


def job_of(page: Any, base: str) -> dict[str, Any]:
    expect(page.locator("#stage figure.result img")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/\?job=gen_"))
    return wait_done(base, page.url.split("job=")[1])


# ---- tests --------------------------------------------------------------------------------------


def test_file_chooser_and_mask_brush_make_the_mask_the_provider_uses(
    server: Server, new_page: Any, shots: Path
) -> None:
    base = server.url
    page = new_page(width=DESKTOP[0], height=DESKTOP[1])
    page.goto(base + "/")
    page.get_by_role("radio", name=re.compile("^Offline preview")).check()
    expect(page.locator("#mask-field")).to_be_hidden()  # nothing to mask yet
    add_by_file_chooser(page, photo())
    (ref,) = ready_inputs(page, 1)
    assert ref.startswith("upl_")
    expect(page.locator("#strength-field")).to_be_visible()
    expect(page.locator("#inputs-count")).to_have_text("1 of 16")

    toggle = page.get_by_role("button", name="Paint a mask")
    toggle.press("Enter")  # keyboard opens the brush
    expect(page.locator("#mask-toggle")).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#mask-toggle")).to_have_text("Hide the brush")
    canvas = page.locator("#mask-canvas")
    expect(canvas).to_be_visible()
    size = page.evaluate(
        "(() => { const c = document.querySelector('#mask-canvas'); return [c.width, c.height]; })()"
    )
    assert size == [SIDE, SIDE]  # the canvas is the image's own pixel size
    page.locator("#mask-size").fill("24")
    paint_box(page, (0.15, 0.15, 0.55, 0.55))
    # a stroke then erased leaves nothing behind
    page.get_by_role("radio", name="Eraser").check()
    page.locator("#mask-size").fill("60")
    paint_box(page, (0.7, 0.7, 0.9, 0.9))
    page.get_by_role("radio", name="Brush").check()
    expect(page.locator("#mask-state")).to_have_text("Painted: only that area changes.")
    page.get_by_label("Prompt", exact=True).fill("turn the corner into a stained glass window")
    page.get_by_label("Seed", exact=True).fill("5")
    expect(page.locator("#estimate-value")).to_have_text("Free")

    page.get_by_role("button", name="Generate", exact=True).click()
    job = job_of(page, base)
    assert job["status"] == "succeeded" and job["provider"] == "preview", job
    scroll_to(page, "#strength-field")  # the form with its mask, and the result beside it
    shot(page, shots, "edit-form-desktop")
    roles = [i["role"] for i in job["inputs"]]
    assert roles == ["image", "mask"]
    assert job["inputs"][0]["id"] == ref

    # the stored mask: OpenAI's convention, the image's size, transparent exactly where painted
    mask = decode(job["inputs"][1]["url"])
    assert mask.format == "PNG" and mask.mode == "RGBA" and mask.size == (SIDE, SIDE)
    alpha = mask.getchannel("A")
    assert set(alpha.getdata()) == {0, 255}
    at = lambda fx, fy: alpha.getpixel((int(fx * SIDE), int(fy * SIDE)))  # noqa: E731
    assert at(0.3, 0.3) == 0 and at(0.5, 0.2) == 0  # painted: edit here
    assert at(0.05, 0.05) == 255 and at(0.8, 0.3) == 255 and at(0.3, 0.8) == 255  # kept
    assert at(0.8, 0.8) == 255  # painted, then erased
    painted = alpha.point(lambda a: 255 if a == 0 else 0).getbbox()
    assert painted is not None
    x0, y0, x1, y1 = painted
    assert 0.08 * SIDE < x0 < 0.2 * SIDE and 0.5 * SIDE < x1 < 0.65 * SIDE, painted
    assert 0.08 * SIDE < y0 < 0.2 * SIDE and 0.5 * SIDE < y1 < 0.65 * SIDE, painted

    # the provider took it: the result changed far more inside the painted area than outside
    result = decode(job["image"]["url"]).convert("RGB")
    before = Image.open(io.BytesIO(photo())).convert("RGB").resize(result.size)
    diff = ImageChops.difference(result, before).convert("L")
    w = result.width

    def change(box: tuple[float, float, float, float]) -> float:
        return float(ImageStat.Stat(diff.crop(tuple(int(f * w) for f in box))).mean[0])

    inside, outside = change((0.25, 0.25, 0.45, 0.45)), change((0.7, 0.05, 0.95, 0.3))
    assert inside > 4 * outside and inside > 15, (inside, outside)

    # before / after on the job page: a slider the keyboard moves, and the inputs
    page.goto(f"{base}/jobs/{job['id']}")
    slider = page.locator(".ba-slider")
    expect(slider).to_be_visible()
    expect(page.locator(".ba-slider img.ba-before")).to_have_attribute(
        "src", same_object(job["inputs"][0]["url"])
    )
    rng = page.get_by_role("slider", name=re.compile("Before and after"))
    rng.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert slider.evaluate("el => el.style.getPropertyValue('--split')") == "53%"
    expect(page.locator(".input-strip li")).to_have_count(2)
    expect(page.locator(".input-strip figcaption").nth(1)).to_have_text("Mask")
    expect(page.locator(".lineage")).to_contain_text("An uploaded image")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#job-inputs img')].every((i) => i.complete)"
    )
    rng.fill("30")  # the edited corner shows on the "after" side
    assert slider.evaluate("el => el.style.getPropertyValue('--split')") == "30%"
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, shots, "edit-job-desktop", full=True)
    page.get_by_role("button", name="Side by side").click()
    expect(page.locator(".ba-side figure")).to_have_count(2)
    expect(page.get_by_role("button", name="Side by side")).to_have_attribute(
        "aria-pressed", "true"
    )


def _drop_and_paste(page: Any, data: bytes) -> None:
    """A synthetic drop on the form, then Ctrl+V of an image (DataTransfer with a File)."""
    page.evaluate(
        """(b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const file = (name) => new File([bytes], name, { type: "image/png" });
          const drop = new DataTransfer();
          drop.items.add(file("dropped.png"));
          const form = document.querySelector('#gen-form');
          for (const type of ['dragenter', 'dragover', 'drop']) {
            form.dispatchEvent(new DragEvent(type, { dataTransfer: drop, bubbles: true, cancelable: true }));
          }
          const clip = new DataTransfer();
          clip.items.add(file("pasted.png"));
          document.querySelector('#prompt').dispatchEvent(
            new ClipboardEvent('paste', { clipboardData: clip, bubbles: true, cancelable: true }));
        }""",
        base64.b64encode(data).decode(),
    )


def test_drop_paste_remove_and_the_models_limit(server: Server, new_page: Any) -> None:
    base = server.url
    page = new_page(width=DESKTOP[0], height=DESKTOP[1])
    page.goto(base + "/")
    page.get_by_role("radio", name=re.compile("^Offline preview")).check()
    _drop_and_paste(page, photo("navy"))
    refs = ready_inputs(page, 2)
    assert all(r.startswith("upl_") for r in refs)
    assert refs[0] == refs[1]  # the same picture twice: one content-addressed upload
    assert (
        httpx.post(f"{base}/v1/uploads", files={"file": ("x.png", photo("navy"))}).json()["id"]
        == refs[0]
    )
    expect(page.locator("#prompt")).to_have_value("")  # the image was not pasted as text

    # remove with the keyboard: focus moves on to the next remove button
    page.get_by_role("button", name="Remove input image 1").press("Enter")
    ready_inputs(page, 1)
    expect(page.get_by_role("button", name="Remove input image 1")).to_be_focused()

    # GPT Image has input fidelity (and the estimate prices it: high costs more input tokens)
    expect(page.locator("#fidelity-field")).to_be_hidden()
    page.get_by_role("radio", name=re.compile(r"^GPT Image 1 ")).check()
    fidelity = page.get_by_label("Input fidelity")
    expect(fidelity).to_be_visible()
    estimate = page.locator("#estimate-value")
    expect(estimate).not_to_have_text(re.compile(r"^(–|Free)$"))
    low = estimate.text_content()
    fidelity.select_option("high")
    expect(estimate).not_to_have_text(low or "")

    # a model that takes no input images says so, offers one that does, and Generate is off
    page.get_by_role("radio", name=re.compile(r"^FLUX\.1 \[schnell\]")).check()
    notice = page.locator("#inputs-off")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("takes no input images")
    generate = page.get_by_role("button", name="Generate", exact=True)
    expect(generate).to_be_disabled()
    expect(generate).to_have_attribute("aria-describedby", "inputs-help")
    expect(page.locator("#inputs-help")).to_contain_text("takes no input images")
    expect(page.locator("#mask-field")).to_be_hidden()
    notice.get_by_role("button", name=re.compile("^Use Offline preview")).click()
    expect(page.locator("#model-list input:checked")).to_have_value("preview")
    expect(notice).to_be_hidden()
    page.get_by_label("Prompt", exact=True).fill("a little lighter")
    expect(generate).to_be_enabled()
    generate.click()
    job = job_of(page, base)
    assert job["status"] == "succeeded" and [i["role"] for i in job["inputs"]] == ["image"]


def test_edit_this_from_the_gallery_then_lineage_on_the_job_page(
    server: Server, new_page: Any, shots: Path
) -> None:
    base = server.url
    clouds = wait_done(
        base,
        generate_via_api(base, prompt="storm clouds over the sea", model="preview", seed=4)["id"],
    )
    first = wait_done(
        base,
        generate_via_api(base, prompt="a lighthouse on a cliff", model="preview", seed=3)["id"],
    )
    page = new_page(width=PHONE[0], height=PHONE[1])
    page.goto(base + "/gallery")
    page.get_by_role("link", name="Edit this image: a lighthouse on a cliff").click()
    expect(page).to_have_url(re.compile(rf"/\?image={first['id']}$"))
    assert ready_inputs(page, 1) == [first["id"]]  # sent as the generation: lineage
    expect(page.locator("#model-list input:checked")).to_have_value("preview")

    # the gallery picker: the same image twice is refused, another one is the second input
    picker = page.get_by_role("dialog")
    page.get_by_role("button", name="From the gallery").click()
    picker.get_by_role("button", name="Use as input: a lighthouse on a cliff").click()
    expect(picker).to_be_hidden()
    expect(page.locator("#inputs-help")).to_contain_text("already an input")
    ready_inputs(page, 1)
    page.get_by_role("button", name="From the gallery").click()
    picker.get_by_role("button", name="Use as input: storm clouds over the sea").click()
    expect(picker).to_be_hidden()
    assert ready_inputs(page, 2) == [first["id"], clouds["id"]]
    expect(page.locator("#inputs-help")).not_to_contain_text("already")

    page.get_by_role("button", name="Paint a mask").click()
    paint_box(page, (0.3, 0.2, 0.7, 0.5))
    page.get_by_label("Prompt", exact=True).fill("add a storm")
    scroll_to(page, "#inputs-field")
    shot(page, shots, "edit-form-phone")
    page.get_by_role("button", name="Generate", exact=True).click()
    second = job_of(page, base)
    sources = [(i["role"], i["source_generation"]) for i in second["inputs"]]
    assert sources == [("image", first["id"]), ("image", clouds["id"]), ("mask", None)]
    mask = decode(second["inputs"][2]["url"])
    assert mask.size == (first["image"]["width"], first["image"]["height"])

    # an edit of the edit: the chain goes back two levels
    third = wait_done(
        base,
        generate_via_api(base, prompt="now at night", model="preview", images=[second["id"]])["id"],
    )
    page.goto(f"{base}/jobs/{third['id']}")
    chain = page.locator(".lineage")
    expect(chain.get_by_role("link", name="add a storm")).to_have_attribute(
        "href", f"/jobs/{second['id']}"
    )
    expect(
        chain.locator("ol ol").get_by_role("link", name="a lighthouse on a cliff")
    ).to_have_attribute("href", f"/jobs/{first['id']}")
    expect(page.get_by_role("link", name="Edit this image")).to_have_attribute(
        "href", f"/?image={third['id']}"
    )
    page.locator("#job-inputs").scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#job-inputs img')].every((i) => i.complete)"
    )
    scroll_to(page, "#job-inputs")
    shot(page, shots, "edit-job-phone")

    # the gallery marks edits; deleting a source keeps the edit's inputs and says it is gone
    page.goto(f"{base}/gallery")
    card = page.locator(f"#gallery li[data-id='{second['id']}']")
    expect(card.locator(".tag", has_text="Edit")).to_have_attribute(
        "title", "Made from 2 input images (2 from the gallery)"
    )
    assert httpx.delete(f"{base}/v1/generations/{first['id']}", timeout=10).status_code == 204
    page.goto(f"{base}/jobs/{second['id']}")
    chain = page.locator(".lineage")
    expect(chain).to_contain_text("A deleted generation")
    expect(chain.get_by_role("link", name="storm clouds over the sea")).to_be_visible()
    expect(page.locator(".ba-slider img.ba-before")).to_have_attribute(
        "src", same_object(second["inputs"][0]["url"])
    )
    page.wait_for_function(
        "() => document.querySelector('.ba-slider img.ba-before').naturalWidth > 0"
    )


def test_a_finger_paints_the_mask_on_a_phone(server: Server, browser: Any) -> None:
    """Real touch input (Chromium's touch events through CDP): the stroke paints, the page does
    not scroll under the finger, and the mask sent is that stroke."""
    base = server.url
    ctx = browser.new_context(
        viewport={"width": PHONE[0], "height": PHONE[1]}, has_touch=True, is_mobile=True
    )
    errors: list[str] = []
    try:
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        page.get_by_role("radio", name=re.compile("^Offline preview")).check()
        add_by_file_chooser(page, photo("olive"))
        ready_inputs(page, 1)
        page.get_by_role("button", name="Paint a mask").click()
        canvas = page.locator("#mask-canvas")
        canvas.evaluate("el => el.scrollIntoView({ block: 'center' })")
        page.wait_for_timeout(100)
        scrolled = page.evaluate("window.scrollY")
        c = canvas.bounding_box()
        y = c["y"] + c["height"] / 2
        cdp = ctx.new_cdp_session(page)
        touch = "Input.dispatchTouchEvent"
        cdp.send(touch, {"type": "touchStart", "touchPoints": [{"x": c["x"] + 4, "y": y}]})
        for i in range(1, 21):  # left to right across the middle, then a little up
            x = c["x"] + 4 + i * (c["width"] - 8) / 20
            cdp.send(touch, {"type": "touchMove", "touchPoints": [{"x": x, "y": y - i}]})
        cdp.send(touch, {"type": "touchEnd", "touchPoints": []})
        expect(page.locator("#mask-state")).to_have_text("Painted: only that area changes.")
        assert page.evaluate("window.scrollY") == scrolled  # the finger painted, it did not scroll
        page.get_by_label("Prompt", exact=True).fill("a river through the middle")
        page.get_by_role("button", name="Generate", exact=True).click()
        job = job_of(page, base)
        assert job["status"] == "succeeded"
        alpha = decode(job["inputs"][1]["url"]).getchannel("A")
        assert alpha.getpixel((SIDE // 2, SIDE // 2 - 5)) == 0  # under the stroke
        assert alpha.getpixel((SIDE // 2, SIDE // 8)) == 255  # far above it
        assert alpha.getpixel((SIDE // 2, SIDE - SIDE // 8)) == 255  # far below it
    finally:
        ctx.close()
    assert not errors, errors
