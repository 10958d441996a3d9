"""Edits through pixelpipe on a workflow model (issue 16): a stored input image and a mask go
from ``Pipeline.generate(images=…, mask=…)`` to the fake ComfyUI over HTTP (its native API): the
bytes it got are the clean stored input, the mask is honoured, and a second job with the same
image loads the same uploaded file."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageChops

from pixelpipe.fakes.comfyui import ComfyBehaviour, FakeComfyUI
from pixelpipe.fakes.server import serve_app
from pixelpipe.inputs import InputLimits, store_input
from pixelpipe.pipeline import Pipeline
from pixelpipe.settings import load_settings
from tests.providers.test_comfyui_inputs import SIZE, _left_half_mask, img2img_graph

CATALOG = """\
[backends.comfy_a]
kind = "comfyui"
url = "{url}"
usd_per_gpu_hour = 3.6

[models.inpaint-comfy]
label = "inpainting on ComfyUI"
formats = ["png"]
aspect_ratios = {{ "4:3" = [64, 48] }}
max_input_images = 1
accepts_mask = true
strength = {{ min = 0.0, max = 1.0, default = 0.9 }}
backends = ["comfy_a"]
workflow = "inpaint.json"

[models.inpaint-comfy.workflow_inputs]
prompt = "6.text"
seed = "3.seed"
strength = "3.denoise"
image = "10.image"
mask = "10.image"
"""


def photo_with_exif() -> bytes:
    im = Image.new("RGB", SIZE)
    im.putdata([(x * 4, y * 5, 90) for y in range(SIZE[1]) for x in range(SIZE[0])])
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make: metadata pixelpipe strips before any provider sees it
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=95, exif=exif)
    return out.getvalue()


async def test_an_inpainting_edit_runs_end_to_end_on_the_native_backend(tmp_path: Path) -> None:
    fake = FakeComfyUI(behaviour=ComfyBehaviour(step_s=0.01))
    (tmp_path / "inpaint.json").write_text(json.dumps(img2img_graph("alpha"), indent=2))
    async with serve_app(fake.app) as url:
        catalog = tmp_path / "catalog.toml"
        catalog.write_text(CATALOG.format(url=url))
        settings = load_settings(data_dir=tmp_path / "data", catalog_path=catalog)
        async with Pipeline(settings) as p:
            limits = InputLimits.from_settings(settings)
            image = await store_input(p.services.storage, photo_with_exif(), limits)
            mask = await store_input(p.services.storage, _left_half_mask(), limits, field="mask")
            clean = await p.services.storage.get(image.key)
            params: dict[str, Any] = {"model": "inpaint-comfy", "images": [image.id]}
            first = await p.generate("a red boat", seed=1, mask=mask.id, **params)
            second = await p.generate("a blue boat", seed=2, mask=mask.id, **params)
        async with httpx.AsyncClient() as c:
            history = (await c.get(f"{url}/history")).json()
    assert first.job.status.value == second.job.status.value == "succeeded"
    assert first.job.provider == "comfy_a" and first.image is not None
    assert b"SecretCam" in photo_with_exif() and b"SecretCam" not in clean
    names = {entry["prompt"][2]["10"]["inputs"]["image"] for entry in history.values()}
    assert len(names) == 1  # both jobs loaded the same uploaded file…
    uploaded = {name for (_, name) in fake.files.inputs}
    base = next(n for n in uploaded if not n.startswith("pixelpipe-masked-"))
    assert fake.files.inputs[("", base)] == clean  # …made of exactly the clean stored bytes
    assert len(uploaded) == 2  # the image, and the image with the mask as its alpha
    out = Image.open(io.BytesIO(first.image)).convert("RGB")
    source = Image.open(io.BytesIO(clean)).convert("RGB")
    keep = (SIZE[0] // 2, 0, SIZE[0], SIZE[1])
    assert ImageChops.difference(out.crop(keep), source.crop(keep)).getbbox() is None
    assert ImageChops.difference(out, source).getbbox() is not None
