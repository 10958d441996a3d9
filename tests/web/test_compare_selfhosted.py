"""The compare view answers "what does my GPU cost per image vs Replicate?": FLUX schnell served
by a self-hosted backend (an SGLang-style OpenAI-compatible server, its protocol-faithful fake over
a real socket) first and Replicate (its fake) second, compared with FLUX dev on Replicate, in
Debian's Chromium at desktop and phone widths. Each column lists its model's $/image per provider:
the backend's in GPU time beside the hosted price, estimated before and actual after the run."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve import Server, free_port, start_fake_providers, stop_pid
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

SGLANG = """
import uvicorn
from pixelpipe.fakes.openai_compatible import FakeOpenAICompatible, OpenAICompatibleBehaviour
fake = FakeOpenAICompatible(model="flux-schnell", flavour="sglang",
                            behaviour=OpenAICompatibleBehaviour(latency_s=0.2))
uvicorn.run(fake.app, host="127.0.0.1", port={port}, log_level="warning")
"""

CATALOG = """\
[backends.gpu_a]
kind = "openai_compatible"
url = "{url}"
usd_per_gpu_hour = 1.80

[models.flux-schnell]
backends = ["gpu_a", "replicate"]
"""


def wait_listening(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from pixelpipe.fakes.server import fake_env

    root = tmp_path_factory.mktemp("gpu")
    port = free_port()
    gpu = subprocess.Popen([sys.executable, "-c", SGLANG.format(port=port)])
    fakes, url = start_fake_providers(root / "fakes.log")
    server = None
    try:
        wait_listening(f"http://127.0.0.1:{port}/", timeout_s=60)
        catalog = root / "catalog.toml"
        catalog.write_text(CATALOG.format(url=f"http://127.0.0.1:{port}"))
        env = fake_env(url) | {"PIXELPIPE_CATALOG_PATH": str(catalog)}
        server = Server(root / "data", env).start(timeout_s=90)
        yield server
    finally:
        if server is not None:
            server.stop()
        stop_pid(fakes)
        stop_pid(gpu)


def run_comparison(page: Any, base: str) -> Any:
    page.goto(base + "/compare?models=flux-schnell,flux-dev")
    page.get_by_label("Prompt", exact=True).fill("a lighthouse on a cliff at dusk")
    page.get_by_label("Seed", exact=True).fill("7")
    page.get_by_role("button", name="Run comparison").click()
    cols = page.locator("#cmp-grid .cmp-col")
    expect(cols).to_have_count(2)
    for i in range(2):
        expect(cols.nth(i).locator("figure.result img")).to_be_visible()
    return page.locator("#cmp-grid .cmp-col[data-model='flux-schnell']")


def test_gpu_cost_per_image_beside_replicate(
    gpu_server: Server,
    new_page: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    base = gpu_server.url
    page = new_page(height=1100)
    schnell = run_comparison(page, base)
    expect(schnell.locator(".cmp-col-sub")).to_have_text("via gpu_a")
    rates = schnell.locator(".cmp-rate")
    expect(rates).to_have_count(2)
    mine, hosted = rates.nth(0), rates.nth(1)
    # the backend that ran comes first, with this image's actual cost in GPU time
    expect(mine).to_have_attribute("data-provider", "gpu_a")
    expect(mine).to_have_attribute("data-basis", "gpu_time")
    expect(mine).to_contain_text("GPU time")
    expect(mine.locator(".cmp-rate-note")).to_have_text("this image")
    expect(hosted).to_have_attribute("data-provider", "replicate")
    expect(hosted).to_have_attribute("data-basis", "price")
    expect(hosted.locator(".cmp-rate-value")).to_have_text("≈ $0.003")
    expect(hosted.locator(".cmp-rate-note")).to_have_text("estimate")
    label = schnell.locator(".cmp-rate-list").get_attribute("aria-label") or ""
    assert re.fullmatch(
        r"Per image: \$0\.\d+/image on gpu_a \(GPU time\) vs ≈ \$0\.003/image on Replicate",
        label,
    ), label
    # this image's cost is the job's actual cost (GPU-seconds × $1.80/h), not the estimate
    group = page.url.rsplit("/", 1)[1]
    jobs = httpx.get(f"{base}/v1/generations", params={"group": group}, timeout=5).json()["data"]
    job = next(j for j in jobs if j["model"] == "flux-schnell")
    shown = mine.locator(".cmp-rate-value").inner_text()
    assert job["cost"]["status"] == "priced" and 0 < float(job["cost"]["usd"]) < 0.003
    assert float(shown.lstrip("$")) == pytest.approx(float(job["cost"]["usd"]), rel=0.05), shown
    dev = page.locator("#cmp-grid .cmp-col[data-model='flux-dev'] .cmp-rate")
    expect(dev).to_have_count(2)  # Replicate (ran) and fal
    expect(dev.first).to_have_attribute("data-provider", "replicate")
    expect(dev.first.locator(".cmp-rate-value")).to_have_text("$0.025")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1360
    shot(page, shots, "compare-gpu-vs-hosted", full=True)

    # one more image on the backend: reopened, the column shows the measured mean of both
    # (GET /v1/usage; no keys here, so the page may read it)
    more = generate_via_api(base, prompt="a fox", model="flux-schnell", seed=8)
    assert wait_done(base, more["id"])["provider"] == "gpu_a"
    phone = new_page(width=390, height=844)
    phone.goto(page.url)  # the comparison, reopened on a phone
    rates = phone.locator("#cmp-grid .cmp-col[data-model='flux-schnell'] .cmp-rate")
    expect(rates).to_have_count(2)
    expect(rates.first.locator(".cmp-rate-note")).to_have_text(
        re.compile(r"this image · avg \$0\.\d+ over 2 images · \d\.\d\d GPU s \(server\)")
    )
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, shots, "mobile-compare-gpu-vs-hosted", full=True)
