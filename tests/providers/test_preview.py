"""The offline preview provider: deterministic pictures of the requested size and format, $0."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import ProviderRequest, RunState
from pixelpipe.providers.preview.client import INLINE_PIXELS, PreviewProvider, render_preview


def _req(size: int, fmt: str = "webp", seed: int = 1, prompt: str = "a fox") -> ProviderRequest:
    canon = CanonicalRequest(
        model="preview", prompt=prompt, seed=seed, width=size, height=size, format=fmt
    )
    return ProviderRequest("gen_x", 1, canon, "preview")


@pytest.mark.parametrize("size", [64, 256])  # drawn on the loop / in a worker thread
@pytest.mark.parametrize("fmt", ["webp", "png", "jpeg"])
async def test_a_zero_latency_run_answers_at_once_with_the_requested_image(
    size: int, fmt: str
) -> None:
    assert 64 * 64 <= INLINE_PIXELS < 256 * 256
    update = await PreviewProvider().submit(_req(size, fmt))
    assert update.state is RunState.SUCCEEDED and update.usage == {"image_count": 1}
    (out,) = update.outputs
    assert out.data is not None
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.size == (size, size)
        assert im.format == {"webp": "WEBP", "png": "PNG", "jpeg": "JPEG"}[fmt]


def test_the_picture_is_a_function_of_prompt_and_seed() -> None:
    same = render_preview(_req(64).request), render_preview(_req(64).request)
    assert same[0] == same[1]
    assert render_preview(_req(64, seed=2).request) != same[0]
    assert render_preview(_req(64, prompt="a hare").request) != same[0]
