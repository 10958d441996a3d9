"""Edits on AUTOMATIC1111 backends of the operator's catalog file (issue 16): which models may
take inputs there (checked when the file is read), and an edit end to end — uploaded, sent to
the protocol-faithful fake's ``/sdapi/v1/img2img`` over real sockets, its result stored."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from PIL import Image

from pixelpipe.errors import ConfigError
from pixelpipe.fakes.a1111 import A1111Behaviour, FakeA1111
from pixelpipe.fakes.server import serve_app
from pixelpipe.providers.registry import full_catalog, operator_file
from pixelpipe.settings import load_settings
from tests.providers.asgi_recorder import Recorder
from tests.selfhosted.inputs_app import (
    generate,
    left_half_mask,
    pixelpipe,
    png,
    stored_image,
    upload,
)

TEAL = (0, 128, 128)
BACKENDS = """\
[backends.sd_box]
kind = "a1111"
url = "{url}"

[backends.omni]
kind = "openai_compatible"
url = "http://127.0.0.1:9"
"""
GPUKIND = """
[backends.plain]
kind = "gpukind"
url = "http://127.0.0.1:9"
"""
EDIT_MODEL = """
[models.sd-edit]
label = "SD inpainting"
formats = ["png"]
aspect_ratios = { "1:1" = [64, 64] }
steps = { min = 1, max = 50, default = 4 }
max_input_images = 1
accepts_mask = true
strength = { min = 0.0, max = 1.0, default = 0.75 }
backends = ["sd_box"]
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    settings = load_settings(data_dir=tmp_path / "data", catalog_path=path)
    return full_catalog(operator_file(settings))


def test_an_a1111_model_declares_one_image_a_mask_and_strength(tmp_path: Path) -> None:
    catalog = load(tmp_path, BACKENDS.format(url="http://127.0.0.1:9") + EDIT_MODEL)
    spec = catalog.get("sd-edit")  # type: ignore[attr-defined]
    assert (spec.max_input_images, spec.accepts_mask) == (1, True)
    assert spec.strength is not None and spec.strength.default == 0.75


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            EDIT_MODEL.replace("max_input_images = 1", "max_input_images = 2"),
            r"catalog.toml:\d+: model sd-edit on backend sd_box \(a1111\): max_input_images = 2, "
            r"but AUTOMATIC1111's img2img takes one init image .*set max_input_images = 1",
        ),
        (
            GPUKIND + EDIT_MODEL.replace('backends = ["sd_box"]', 'backends = ["plain"]'),
            r"model sd-edit takes image inputs \(max_input_images = 1, accepts_mask = true, "
            r"strength\), and backend plain is a gpukind backend, to which pixelpipe "
            r"sends no input images; set max_input_images = 0 \(text only.*"
            r"\(a1111, cog, openai_compatible\)",
        ),
        (
            EDIT_MODEL.replace('backends = ["sd_box"]', 'backends = ["omni"]'),
            r"model sd-edit on backend omni \(openai_compatible\): accepts_mask = true, but the "
            r"OpenAI-compatible servers' /v1/images/edits takes no mask",
        ),
        (  # inherited: the offline preview takes 16 images and a mask
            '\n[models.my-preview]\nextends = "preview"\nbackends = ["sd_box"]\n',
            r"model my-preview on backend sd_box \(a1111\): max_input_images = 16",
        ),
    ],
)
@pytest.mark.usefixtures("gpukind")  # a kind that takes no image inputs
def test_a_model_claiming_inputs_a_backend_cannot_take_is_refused_at_load(
    tmp_path: Path, model: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, BACKENDS.format(url="http://127.0.0.1:9") + model)


async def test_an_edit_runs_img2img_and_its_result_is_stored(tmp_path: Path) -> None:
    fake = FakeA1111(behaviour=A1111Behaviour(step_s=0.01))
    seen = Recorder(fake.app)
    photo = png(Image.new("RGB", (64, 64), TEAL))
    async with serve_app(seen) as fake_url:
        text = BACKENDS.format(url=fake_url) + EDIT_MODEL
        async with pixelpipe(tmp_path, text) as client:
            image = await upload(client, photo)
            mask = await upload(client, left_half_mask((64, 64)), "mask.png")
            body = {
                "prompt": "dusk over the bay",
                "model": "sd-edit",
                "seed": 3,
                "images": [image["id"]],
                "mask": mask["id"],
                "strength": 0.9,
            }
            job = await generate(client, body)
            assert job["status"] == "succeeded", job
            out = await stored_image(client, job)
    (sent,) = [s.json() for s in seen.sent("/sdapi/v1/img2img")]
    clean = base64.b64decode(sent["init_images"][0])  # the stored upload's exact bytes
    assert "sha256:" + hashlib.sha256(clean).hexdigest() == image["digest"]
    assert sent["denoising_strength"] == 0.9 and "mask" in sent
    assert out.size == (64, 64)
    assert out.getpixel((60, 30)) == TEAL  # outside the mask: the input's own pixels
    assert out.getpixel((4, 30)) != TEAL  # inside: repainted
    assert job["request"]["strength"] == 0.9


def test_the_documented_example_loads(tmp_path: Path) -> None:
    """The catalog example of docs/self-hosted.md, "Image inputs", as written."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "self-hosted.md").read_text()
    section = doc[doc.index("## Image inputs") :]
    start = section.index("```toml\n") + len("```toml\n")
    example = section[start : section.index("```", start)]
    catalog = load(tmp_path, example)
    models = {n: catalog.get(n) for n in ("sdxl-edit", "sdxl-cog-edit", "kontext-house")}  # type: ignore[attr-defined]
    assert [m.max_input_images for m in models.values()] == [1, 1, 4]
    assert [m.accepts_mask for m in models.values()] == [True, True, False]


@pytest.mark.usefixtures("gpukind")
def test_max_input_images_0_makes_an_extended_model_text_only_on_any_kind(tmp_path: Path) -> None:
    text = BACKENDS.format(url="http://127.0.0.1:9") + GPUKIND
    for backend in ("plain", "omni"):
        model = (
            f'\n[models.my-{backend}]\nextends = "preview"\nbackends = ["{backend}"]\n'
            "max_input_images = 0\n"
        )
        catalog = load(tmp_path, text + model)
        assert catalog.get(f"my-{backend}").max_input_images == 0  # type: ignore[attr-defined]
