"""Image inputs on the native ComfyUI backend, against the fake ComfyUI over HTTP: each input is
uploaded with ``POST /upload/image`` under a content-derived name (a retry loads the same file),
a mask that is the image's alpha goes through ``/upload/mask``, a LoadImageMask gets the mask
alone; the fake's image is visibly derived from the uploaded bytes and honours the mask."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops

from pixelpipe.errors import ProviderInvalidInput
from pixelpipe.fakes.comfyui import ComfyBehaviour, FakeComfyUI
from pixelpipe.fakes.server import serve_app
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage, ProviderRequest, ProviderUpdate, RunState
from pixelpipe.providers.comfyui.client import ComfyUIProvider
from pixelpipe.providers.registration import Backend
from pixelpipe.workflows import load_workflow
from tests.servers.comfy_graphs import sdxl

from .asgi_recorder import Recorder

SECRET = b"i" * 32
SIZE = (64, 48)


def img2img_graph(mask: str | None = None) -> dict[str, Any]:
    """SDXL with its latent from LoadImage 10 → VAEEncode 11; ``mask``: "alpha" (the LoadImage's
    own MASK output) or "node" (a LoadImageMask 12), through SetLatentNoiseMask 13."""
    graph = copy.deepcopy(sdxl())
    del graph["5"]
    graph["10"] = {"inputs": {"image": "example.png"}, "class_type": "LoadImage"}
    graph["11"] = {"inputs": {"pixels": ["10", 0], "vae": ["4", 2]}, "class_type": "VAEEncode"}
    graph["3"]["inputs"]["latent_image"] = ["11", 0]
    if mask is not None:
        source = ["10", 1]
        if mask == "node":
            graph["12"] = {
                "inputs": {"image": "mask.png", "channel": "alpha"},
                "class_type": "LoadImageMask",
            }
            source = ["12", 0]
        graph["13"] = {
            "inputs": {"samples": ["11", 0], "mask": source},
            "class_type": "SetLatentNoiseMask",
        }
        graph["3"]["inputs"]["latent_image"] = ["13", 0]
    return graph


@dataclass
class Comfy:
    fake: FakeComfyUI
    seen: Recorder
    url: str
    tmp: Path

    def provider(self) -> ComfyUIProvider:
        return ComfyUIProvider(Backend("comfy_a", "comfyui", self.url), secret=SECRET)

    def job(
        self, masked: str | None, attempt: int = 1, strength: float = 0.8, **kw: Any
    ) -> ProviderRequest:
        path = self.tmp / f"flow-{masked}.json"
        path.write_text(json.dumps(img2img_graph(masked), indent=2))
        mapping = {"prompt": ["6.text"], "seed": ["3.seed"], "image": ["10.image"]}
        mapping |= {"strength": ["3.denoise"]}
        if masked is not None:
            mapping["mask"] = ["10.image" if masked == "alpha" else "12.image"]
        workflow = load_workflow(path, mapping)
        req = CanonicalRequest("img2img", "a red fox", 42, 64, 48, "png", strength=strength)
        fields: dict[str, Any] = {"workflow": workflow, "images": (PHOTO,)} | kw
        return ProviderRequest("job_1", attempt, req, "img2img", **fields)


def picture(data: bytes) -> InputImage:
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
    return InputImage("sha256:x", "image/png", data, w, h)


def _photo() -> bytes:
    im = Image.new("RGB", SIZE)
    im.putdata([(x * 4, y * 5, 128) for y in range(SIZE[1]) for x in range(SIZE[0])])
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def _left_half_mask() -> bytes:
    """Transparent (change) on the left half, opaque (keep) on the right: OpenAI's convention."""
    im = Image.new("RGBA", SIZE, (0, 0, 0, 255))
    im.paste((0, 0, 0, 0), (0, 0, SIZE[0] // 2, SIZE[1]))
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


PHOTO = picture(_photo())
MASK = picture(_left_half_mask())


@pytest.fixture
async def comfy(tmp_path: Path) -> AsyncIterator[Comfy]:
    fake = FakeComfyUI(behaviour=ComfyBehaviour(step_s=0.01))
    seen = Recorder(fake.app)
    async with serve_app(seen) as url:
        yield Comfy(fake, seen, url, tmp_path)


async def run(provider: ComfyUIProvider, req: ProviderRequest) -> ProviderUpdate:
    pid = (await provider.submit(req)).provider_job_id
    async with asyncio.timeout(15):
        while not (update := await provider.poll(pid, req)).state.terminal:
            await asyncio.sleep(0.02)
    return update


def rgb(data: bytes | None) -> Image.Image:
    assert data is not None
    return Image.open(io.BytesIO(data)).convert("RGB")


async def history_graph(comfy: Comfy) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        history = (await c.get(f"{comfy.url}/history")).json()
    *_, last = history.values()
    return dict(last["prompt"][2])


async def test_img2img_uploads_the_clean_bytes_and_the_image_comes_from_them(
    comfy: Comfy,
) -> None:
    provider = comfy.provider()
    try:
        done = await run(provider, comfy.job(None))
        name = (await history_graph(comfy))["10"]["inputs"]["image"]
        same = await run(provider, comfy.job(None, attempt=2, strength=0.0))
    finally:
        await provider.aclose()
    assert done.state is same.state is RunState.SUCCEEDED, done.error
    upload = comfy.seen.sent("/upload/image")[0]
    assert name.startswith("pixelpipe-") and name.endswith(".png")
    assert comfy.fake.files.inputs[("", name)] == PHOTO.data  # exactly the clean input
    out = rgb(done.outputs[0].data)
    assert out.size == SIZE  # the input's size, not the workflow's
    assert ImageChops.difference(out, rgb(PHOTO.data)).getbbox() is not None  # changed…
    # …by the strength: at denoise 0 the picture is the input itself
    assert ImageChops.difference(rgb(same.outputs[0].data), rgb(PHOTO.data)).getbbox() is None
    assert b'name="overwrite"' in upload.body and b'name="type"' in upload.body


async def test_a_retried_job_loads_the_same_uploaded_file(comfy: Comfy) -> None:
    provider = comfy.provider()
    try:
        first = await run(provider, comfy.job(None, attempt=1))
        names = [(await history_graph(comfy))["10"]["inputs"]["image"]]
        second = await run(provider, comfy.job(None, attempt=2))
        names.append((await history_graph(comfy))["10"]["inputs"]["image"])
    finally:
        await provider.aclose()
    assert first.state is second.state is RunState.SUCCEEDED
    assert names[0] == names[1]
    assert list(comfy.fake.files.inputs) == [("", names[0])]  # one file for both attempts


@pytest.mark.parametrize("mask", ["alpha", "node"])
async def test_the_mask_is_honoured(comfy: Comfy, mask: str) -> None:
    provider = comfy.provider()
    try:
        done = await run(provider, comfy.job(mask, mask=MASK))
    finally:
        await provider.aclose()
    assert done.state is RunState.SUCCEEDED, done.error
    out, source = rgb(done.outputs[0].data), rgb(PHOTO.data)
    half = SIZE[0] // 2
    keep = (half, 0, SIZE[0], SIZE[1])
    assert ImageChops.difference(out.crop(keep), source.crop(keep)).getbbox() is None
    change = (0, 0, half, SIZE[1])
    assert ImageChops.difference(out.crop(change), source.crop(change)).getbbox() is not None
    graph = await history_graph(comfy)
    if mask == "alpha":  # /upload/mask put the mask into the image: LoadImage loads that
        (sent,) = comfy.seen.sent("/upload/mask")
        assert b'name="original_ref"' in sent.body
        loaded = comfy.fake.files.inputs[("", graph["10"]["inputs"]["image"])]
        with Image.open(io.BytesIO(loaded)) as im:
            assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 0
            assert im.getpixel((SIZE[0] - 1, 0))[3] == 255
    else:
        assert comfy.seen.sent("/upload/mask") == []
        assert graph["12"]["inputs"]["image"].startswith("pixelpipe-mask-")


async def test_a_request_without_its_image_is_refused_before_anything_is_queued(
    comfy: Comfy,
) -> None:
    provider = comfy.provider()
    try:
        with pytest.raises(ProviderInvalidInput, match="loads 1 input image"):
            await provider.submit(comfy.job(None, images=()))
    finally:
        await provider.aclose()
    assert comfy.seen.sent("/prompt") == [] and comfy.seen.sent("/upload/image") == []


async def test_the_fake_refuses_a_workflow_whose_file_was_never_uploaded(comfy: Comfy) -> None:
    graph = img2img_graph()
    async with httpx.AsyncClient() as c:
        resp = await c.post(f"{comfy.url}/prompt", json={"prompt": graph})
    assert resp.status_code == 400
    (error,) = resp.json()["node_errors"]["10"]["errors"]
    assert error["type"] == "custom_validation_failed"
    assert error["details"] == "image - Invalid image file: example.png"
