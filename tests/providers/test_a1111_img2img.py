"""Edits on the a1111 kind (issue 16): ``POST /sdapi/v1/img2img`` against the AUTOMATIC1111 fake
over real sockets — the body A1111 expects, the mask turned into its convention, progress while
it runs — and the fake's own img2img facts (its errors, its mask reading, a derived result)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelpipe.fakes.a1111 import A1111Behaviour, FakeA1111
from pixelpipe.fakes.server import serve_app
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.a1111.client import A1111Provider
from pixelpipe.providers.base import InputImage, ProviderRequest, RunState
from pixelpipe.providers.registration import Backend

from .asgi_recorder import Recorder

IMG2IMG = "/sdapi/v1/img2img"
SIZE = (64, 48)
TEAL = (0, 128, 128)


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def input_image(data: bytes) -> InputImage:
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
    return InputImage("sha256:" + hashlib.sha256(data).hexdigest(), "image/png", data, w, h)


PHOTO = png(Image.new("RGB", SIZE, TEAL))


def openai_mask() -> bytes:
    """OpenAI's convention: transparent = edit. Here: the left half."""
    mask = Image.new("RGBA", SIZE, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, SIZE[0] // 2, SIZE[1]))
    return png(mask)


def edit(
    *, mask: bytes | None = None, strength: float | None = 0.6, steps: int = 4
) -> ProviderRequest:
    req = CanonicalRequest(
        "sd-edit",
        "dusk over the bay",
        7,
        *SIZE,
        "png",
        steps=steps,
        images=("sha256:x",),
        mask="sha256:m" if mask else None,
        strength=strength,
    )
    masked = input_image(mask) if mask else None
    return ProviderRequest("job_1", 1, req, "sd-edit", images=(input_image(PHOTO),), mask=masked)


class Served:
    def __init__(self, fake: FakeA1111, seen: Recorder, url: str) -> None:
        self.fake, self.seen, self.url = fake, seen, url

    def provider(self, **options: Any) -> A1111Provider:
        return A1111Provider(Backend(name="a1", kind="a1111", url=self.url, options=options))

    def body(self) -> dict[str, Any]:
        sent: dict[str, Any] = self.seen.sent(IMG2IMG)[-1].json()
        return sent


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    fake = FakeA1111(behaviour=A1111Behaviour(step_s=0.01))
    seen = Recorder(fake.app)
    async with serve_app(seen) as url:
        yield Served(fake, seen, url)


def decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")


async def test_an_edit_posts_img2img_with_the_clean_bytes_mask_and_strength(
    served: Served,
) -> None:
    provider = served.provider()
    update = await provider.submit(edit(mask=openai_mask(), strength=0.6))
    await provider.aclose()
    assert update.state is RunState.SUCCEEDED, update.error
    body = served.body()
    assert served.seen.sent("/sdapi/v1/txt2img") == []
    # plain base64 of the exact bytes (no data: prefix), denoising_strength from strength
    assert body["init_images"] == [base64.b64encode(PHOTO).decode()]
    assert body["denoising_strength"] == 0.6
    assert (body["inpainting_fill"], body["mask_blur"], body["inpaint_full_res"]) == (1, 4, False)
    assert body["inpainting_mask_invert"] == 0
    # the mask arrives white = repaint, greyscale: the transparent left half is white
    mask = Image.open(io.BytesIO(base64.b64decode(body["mask"])))
    assert mask.mode == "L" and mask.size == SIZE
    assert mask.getpixel((5, 5)) == 255 and mask.getpixel((SIZE[0] - 5, 5)) == 0
    # the result: repainted on the left, the input's own pixels on the right
    out = Image.open(io.BytesIO(update.outputs[0].data or b"")).convert("RGB")
    assert out.size == SIZE
    assert out.getpixel((SIZE[0] - 5, 10)) == TEAL
    assert out.getpixel((5, 10)) != TEAL
    assert update.usage["info"]["denoising_strength"] == 0.6


async def test_without_mask_or_strength_the_servers_default_strength_applies(
    served: Served,
) -> None:
    provider = served.provider(denoising_strength=0.3)
    update = await provider.submit(edit(strength=None))
    no_option = served.provider()
    plain = await no_option.submit(edit(strength=None))
    await provider.aclose()
    await no_option.aclose()
    first, second = served.seen.sent(IMG2IMG)
    assert first.json()["denoising_strength"] == 0.3  # the backend's option
    assert "denoising_strength" not in second.json() and "mask" not in second.json()
    assert plain.usage["info"]["denoising_strength"] == 0.75  # A1111's default
    # the whole picture moves towards the prompt's, more with more strength
    teal_distance = [
        sum(abs(a - b) for a, b in zip(_pixel(u), TEAL, strict=True)) for u in (update, plain)
    ]
    assert 0 < teal_distance[0] < teal_distance[1]


def _pixel(update: Any) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(update.outputs[0].data)) as im:
        return tuple(im.convert("RGB").getpixel((20, 20)))  # type: ignore[return-value]


async def test_progress_during_img2img_counts_the_steps_strength_leaves(served: Served) -> None:
    served.fake.knobs.step_s = 0.03
    provider = served.provider()
    run = asyncio.create_task(provider.submit(edit(strength=0.5, steps=30)))
    seen = [p async for p in provider.progress_of("job_1", interval_s=0.05)]
    update = await run
    await provider.aclose()
    assert update.state is RunState.SUCCEEDED
    running = [p for p in seen if p.state == "running"]
    assert len(running) >= 3
    assert {p.job for p in running} == {"scripts_img2img"}
    assert {p.steps for p in running} == {15}  # int(0.5 × 30): img2img denoises part of the way
    fractions = [p.fraction for p in running]
    assert fractions == sorted(fractions) and fractions[-1] > fractions[0]


# --- the fake's img2img, as AUTOMATIC1111 1.10 answers ---------------------------------------


async def post(url: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.post(IMG2IMG, json={"prompt": "x", "steps": 2} | body)


async def test_bad_base64_is_a1111s_500_invalid_encoded_image(served: Served) -> None:
    for field in ("init_images", "mask"):
        body = {"init_images": [base64.b64encode(PHOTO).decode()]}
        body[field] = "%%% not an image %%%" if field == "mask" else ["bm90IGFuIGltYWdl"]
        resp = await post(served.url, body)
        assert resp.status_code == 500, field
        assert resp.json() == {
            "error": "HTTPException",
            "detail": "Invalid encoded image",
            "body": "",
            "errors": "500: Invalid encoded image",
        }


async def test_missing_or_mistyped_init_images(served: Served) -> None:
    missing = await post(served.url, {})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Init image not found"
    mistyped = await post(served.url, {"init_images": "abc"})
    assert mistyped.status_code == 422
    assert mistyped.json() == {
        "detail": [
            {
                "loc": ["body", "init_images"],
                "msg": "value is not a valid list",
                "type": "type_error.list",
            }
        ]
    }
    batch = await post(served.url, {"init_images": [base64.b64encode(PHOTO).decode()] * 2})
    assert batch.status_code == 500
    assert batch.json()["errors"] == "bad number of images passed: 2; expecting 1 or less"


async def test_data_prefix_accepted_and_inputs_not_echoed(served: Served) -> None:
    uri = "data:image/png;base64," + base64.b64encode(PHOTO).decode()
    resp = await post(served.url, {"init_images": [uri], "denoising_strength": 0.0})
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["parameters"]["init_images"] is None and answer["parameters"]["mask"] is None
    # strength 0: the input itself, resized to the request's size (512x512 by default)
    out = decoded(answer["images"][0])
    assert out.size == (512, 512) and out.getpixel((100, 100)) == TEAL
    assert json.loads(answer["info"])["denoising_strength"] == 0.0


async def test_an_openai_mask_sent_raw_would_repaint_the_other_half(served: Served) -> None:
    """Why the provider converts: A1111 reads an RGBA mask's alpha, opaque = repaint."""
    raw = base64.b64encode(openai_mask()).decode()
    body = {
        "init_images": [base64.b64encode(PHOTO).decode()],
        "mask": raw,
        "width": SIZE[0],
        "height": SIZE[1],
    }
    out = decoded((await post(served.url, body)).json()["images"][0])
    assert out.getpixel((5, 10)) == TEAL  # the part meant to be edited is kept
    assert out.getpixel((SIZE[0] - 5, 10)) != TEAL
