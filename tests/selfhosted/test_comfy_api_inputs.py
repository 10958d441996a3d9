"""Edits on a Comfy API v2 backend, against the REAL comfy-api-proxy 0.1.6 in front of the fake
ComfyUI (tests/servers/comfy_proxy.py): each input goes up as an asset (``POST
/api/v2/assets``, which the proxy passes to ComfyUI's ``/upload/image``), the workflow holds
``core/ASSET`` references that the proxy turns into the file names; v2 has no ``/upload/mask``,
so a mask that is an image's alpha is put into the image before the upload."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops

from pixelpipe.inputs import InputLimits, store_input
from pixelpipe.pipeline import Pipeline
from pixelpipe.settings import load_settings
from tests.providers.test_comfyui_inputs import SIZE, _left_half_mask, _photo, img2img_graph
from tests.servers.comfy_proxy import ComfyStack

pytestmark = [pytest.mark.servers, pytest.mark.slow]

CATALOG = """\
[backends.comfy_v2]
kind = "comfy_api"
url = "{url}"
usd_per_gpu_hour = 3.6

[models.img2img-v2]
label = "image-to-image on Comfy API v2"
formats = ["png"]
aspect_ratios = {{ "4:3" = [64, 48] }}
max_input_images = 1
strength = {{ min = 0.0, max = 1.0, default = 0.7 }}
backends = ["comfy_v2"]
workflow = "img2img.json"
workflow_inputs = {{ prompt = "6.text", seed = "3.seed", strength = "3.denoise", image = "10.image" }}

[models.inpaint-v2]
label = "inpainting on Comfy API v2"
formats = ["png"]
aspect_ratios = {{ "4:3" = [64, 48] }}
max_input_images = 1
accepts_mask = true
backends = ["comfy_v2"]
workflow = "inpaint.json"
workflow_inputs = {{ prompt = "6.text", seed = "3.seed", image = "10.image", mask = "10.image" }}
"""


def history_images(comfy: ComfyStack) -> list[str]:
    history = httpx.get(f"{comfy.comfyui.url}/history", timeout=10).json()
    graphs = [entry["prompt"][2] for entry in history.values()]  # other tests' prompts too
    return [g["10"]["inputs"]["image"] for g in graphs if "10" in g]


def input_file(comfy: ComfyStack, name: str) -> bytes:
    params = {"filename": name, "type": "input"}
    resp = httpx.get(f"{comfy.comfyui.url}/view", params=params, timeout=10)
    resp.raise_for_status()
    return resp.content


async def test_img2img_and_inpaint_run_through_the_real_proxy(
    comfy: ComfyStack, tmp_path: Path
) -> None:
    (tmp_path / "img2img.json").write_text(json.dumps(img2img_graph(), indent=2))
    (tmp_path / "inpaint.json").write_text(json.dumps(img2img_graph("alpha"), indent=2))
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG.format(url=comfy.proxy.url))
    settings = load_settings(data_dir=tmp_path / "data", catalog_path=catalog)
    async with Pipeline(settings) as p:
        limits = InputLimits.from_settings(settings)
        image = await store_input(p.services.storage, _photo(), limits)
        mask = await store_input(p.services.storage, _left_half_mask(), limits, field="mask")
        clean = await p.services.storage.get(image.key)
        common: dict[str, Any] = {"images": [image.id], "timeout_s": 90}
        first = await p.generate("a fox", model="img2img-v2", seed=1, **common)
        again = await p.generate("a cat", model="img2img-v2", seed=2, **common)
        inpaint = await p.generate("a dog", model="inpaint-v2", seed=3, mask=mask.id, **common)
    for result in (first, again, inpaint):
        assert result.job.status.value == "succeeded", result.job.error_detail
        assert result.job.provider == "comfy_v2"
    plain, plain_again, masked = history_images(comfy)[-3:]
    assert plain == plain_again  # the proxy deduplicated the asset: the same file twice
    assert input_file(comfy, plain) == clean  # ComfyUI got exactly the clean stored bytes
    with Image.open(io.BytesIO(input_file(comfy, masked))) as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 0  # changed here…
        assert im.getpixel((SIZE[0] - 1, 0))[3] == 255  # …kept here
    assert first.image is not None and inpaint.image is not None
    source = Image.open(io.BytesIO(clean)).convert("RGB")
    out = Image.open(io.BytesIO(inpaint.image)).convert("RGB")
    keep = (SIZE[0] // 2, 0, SIZE[0], SIZE[1])
    assert ImageChops.difference(out.crop(keep), source.crop(keep)).getbbox() is None
    assert ImageChops.difference(out, source).getbbox() is not None
    derived = Image.open(io.BytesIO(first.image)).convert("RGB")
    assert derived.size == SIZE and ImageChops.difference(derived, source).getbbox() is not None
