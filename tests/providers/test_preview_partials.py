"""The offline preview's simulated partial images: coarse to fine, small, at most two a second."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image, ImageChops, ImageStat

from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import ProviderRequest, RunState
from pixelpipe.providers.preview.client import PreviewProvider, render_preview
from pixelpipe.providers.preview.partials import (
    MIN_STAGE_S,
    partial_preview,
    schedule,
)
from pixelpipe.providers.previews import PREVIEW_MAX_BYTES


def _req(size: int = 256, fmt: str = "webp") -> ProviderRequest:
    canon = CanonicalRequest(
        model="preview", prompt="a fox", seed=3, width=size, height=size, format=fmt
    )
    return ProviderRequest("gen_x", 1, canon, "preview")


def _image(url: str) -> Image.Image:
    header, _, payload = url.partition(",")
    assert header.startswith("data:image/") and header.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(payload)))


@pytest.mark.parametrize(
    ("latency_s", "stages"), [(0.2, 0), (0.9, 0), (1.0, 1), (1.5, 2), (2.0, 3), (30.0, 3)]
)
def test_stages_are_at_least_half_a_second_apart_and_from_the_end(
    latency_s: float, stages: int
) -> None:
    plan = schedule(latency_s)
    assert plan.stages == stages
    if stages:
        assert plan.interval_s >= MIN_STAGE_S
        assert latency_s - stages * plan.interval_s >= MIN_STAGE_S - 1e-9
        assert [plan.stage_at(k * plan.interval_s) for k in range(stages + 1)] == [
            *range(stages + 1)
        ]
    assert plan.next_poll_s(0.0) == pytest.approx(plan.interval_s if stages else latency_s)


@pytest.mark.parametrize("fmt", ["webp", "png", "jpeg"])
@pytest.mark.parametrize("size", [64, 1024])
def test_partials_are_small_deterministic_and_sharpen_towards_the_picture(
    fmt: str, size: int
) -> None:
    final = render_preview(_req(size, fmt).request)
    urls = [partial_preview(final, fmt, stage) for stage in (1, 2, 3)]
    assert all(u is not None for u in urls)
    assert urls == [partial_preview(final, fmt, stage) for stage in (1, 2, 3)]
    assert len(set(urls)) == 3
    with Image.open(io.BytesIO(final)) as im:
        target = im.convert("RGB")
    errors = []
    for url in urls:
        assert url is not None and len(base64.b64decode(url.partition(",")[2])) <= PREVIEW_MAX_BYTES
        with _image(url) as partial:
            assert partial.format == {"webp": "WEBP", "png": "PNG", "jpeg": "JPEG"}[fmt]
            assert max(partial.size) <= min(size, 256)
            shown = partial.convert("RGB").resize(target.size)
        errors.append(_distance(shown, target))
    assert errors[0] > errors[1] > errors[2]  # coarse to fine


def _distance(a: Image.Image, b: Image.Image) -> float:
    return float(sum(ImageStat.Stat(ImageChops.difference(a, b)).mean))


async def test_polls_carry_the_partial_of_their_stage_and_come_back_at_the_next() -> None:
    provider = PreviewProvider(latency_ms=2000)
    req = _req(128)
    submitted = await provider.submit(req)
    assert submitted.state is RunState.RUNNING
    assert submitted.poll_after_s == pytest.approx(0.5, abs=0.01)
    assert "preview" not in submitted.progress
    seen = []
    for elapsed in (0.6, 1.1, 1.6):
        ready_at_ms = int((time.time() + 2.0 - elapsed) * 1000)  # a run ``elapsed`` s old
        update = await provider.poll(f"pv_{ready_at_ms}_gen_x_1", req)
        assert update.state is RunState.RUNNING
        assert update.poll_after_s is not None and update.poll_after_s <= 0.5
        seen.append(update.progress["preview"])
    assert len(set(seen)) == 3
    done = await provider.poll(f"pv_{int(time.time() * 1000) - 1}_gen_x_1", req)
    assert done.state is RunState.SUCCEEDED and "preview" not in done.progress
