"""Image inputs of a workflow (issue 16): image slots on LoadImage nodes, the mask on a
LoadImageMask (or as the alpha of an image slot), strength on the sampler's denoise — checked when
the workflow is bound and when the catalog file is loaded (file and line), rendered with the
names the backend's uploads got."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pixelpipe.catalog import load_catalog
from pixelpipe.catalog.merge import with_operator_models
from pixelpipe.errors import ConfigError
from pixelpipe.intake import CanonicalRequest
from pixelpipe.workflows import InputRef, load_workflow
from pixelpipe.workflows.inputs import MissingInputs, comfy_mask, slot_files, with_alpha
from tests.workflows.conftest import Graph, stock
from tests.workflows.test_catalog import at, load, refused

WorkflowFile = Callable[..., Path]


def img2img(*, mask_node: bool = False, second: bool = False) -> Graph:
    """The stock SDXL graph reading its latent from a LoadImage (10) → VAEEncode (11); with
    ``mask_node`` a LoadImageMask (12) → SetLatentNoiseMask (13); ``second``: another LoadImage."""
    graph = copy.deepcopy(stock())
    del graph["5"]
    graph["10"] = {"inputs": {"image": "example.png"}, "class_type": "LoadImage"}
    graph["11"] = {"inputs": {"pixels": ["10", 0], "vae": ["4", 2]}, "class_type": "VAEEncode"}
    graph["3"]["inputs"]["latent_image"] = ["11", 0]
    if mask_node:
        graph["12"] = {
            "inputs": {"image": "mask.png", "channel": "alpha"},
            "class_type": "LoadImageMask",
        }
        graph["13"] = {
            "inputs": {"samples": ["11", 0], "mask": ["12", 0]},
            "class_type": "SetLatentNoiseMask",
        }
        graph["3"]["inputs"]["latent_image"] = ["13", 0]
    if second:
        graph["14"] = {"inputs": {"image": "style.png"}, "class_type": "LoadImage"}
    return graph


def request(**kw: Any) -> CanonicalRequest:
    return CanonicalRequest("m", "a red fox", 42, 64, 64, "png", **kw)


def png(color: tuple[int, ...], size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


class Picture:
    def __init__(self, data: bytes) -> None:
        self.data, self.content_type = data, "image/png"


def test_image_slots_keep_their_order_and_render_the_uploaded_names(
    workflow_file: WorkflowFile,
) -> None:
    path = workflow_file(img2img(second=True))
    workflow = load_workflow(
        path, {"image": ["14.image", "10.image"], "strength": ["3.denoise"], "prompt": ["6.text"]}
    )
    assert workflow.image_slots == (InputRef("14", "image"), InputRef("10", "image"))
    files = {InputRef("14", "image"): "a.png", InputRef("10", "image"): "b.png"}
    graph = workflow.render(request(strength=0.4), files)
    assert graph["14"]["inputs"]["image"] == "a.png" and graph["10"]["inputs"]["image"] == "b.png"
    assert graph["3"]["inputs"]["denoise"] == 0.4
    with pytest.raises(ConfigError, match="loads an input image, and none was uploaded"):
        workflow.render(request())
    # without a strength the workflow keeps its own denoise
    assert workflow.render(request(), files)["3"]["inputs"]["denoise"] == 1


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"image": ["11.pixels"]}, "that input is a link from node 10 (LoadImage)"),
        ({"image": ["3.seed"]}, "node 3 is a KSampler node and that input is not the file"),
        ({"image": ["12.image"]}, "node 12 is a LoadImageMask node"),
        ({"image": ["10.image", "10.image"]}, "image lists an input twice"),
        ({"mask": ["12.image", "10.image"]}, "a request has one mask"),
        ({"mask": ["12.channel"]}, "that input is not the file"),
        ({"strength": ["6.text"]}, "strength is a number"),
        ({"image": ["99.image"]}, "has no node '99'"),
    ],
)
def test_a_wrong_image_mapping_is_refused_naming_the_fix(
    workflow_file: WorkflowFile, mapping: dict[str, list[str]], message: str
) -> None:
    path = workflow_file(img2img(mask_node=True))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_workflow(path, {"prompt": ["6.text"], **mapping})


def test_the_mask_may_be_the_alpha_of_an_image_slot_but_nothing_else_shares(
    workflow_file: WorkflowFile,
) -> None:
    path = workflow_file(img2img())
    workflow = load_workflow(
        path, {"prompt": ["6.text"], "image": ["10.image"], "mask": ["10.image"]}
    )
    assert workflow.mask_slot == InputRef("10", "image")
    with pytest.raises(ConfigError, match="mapped to both"):
        load_workflow(
            path,
            {
                "prompt": ["6.text"],
                "mask": ["10.image"],
                "image": ["10.image"],
                "negative_prompt": ["6.text"],
            },
        )


def test_image_placeholders_are_refused_and_denoise_means_strength(
    workflow_file: WorkflowFile,
) -> None:
    graph = img2img()
    graph["10"]["inputs"]["image"] = "%image%"
    with pytest.raises(ConfigError, match="input images and masks are mapped in the catalog"):
        load_workflow(workflow_file(graph), {"prompt": ["6.text"]})
    graph = img2img()
    graph["3"]["inputs"]["denoise"] = "%denoise%"
    workflow = load_workflow(workflow_file(graph), {"prompt": ["6.text"], "image": ["10.image"]})
    assert workflow.targets["strength"] == (InputRef("3", "denoise"),)
    files = {InputRef("10", "image"): "x.png"}
    assert workflow.render(request(strength=0.3), files)["3"]["inputs"]["denoise"] == 0.3


def test_slot_files_have_content_derived_names_and_the_mask_as_alpha(
    workflow_file: WorkflowFile,
) -> None:
    path = workflow_file(img2img())
    workflow = load_workflow(
        path, {"prompt": ["6.text"], "image": ["10.image"], "mask": ["10.image"]}
    )
    image = Picture(png((200, 10, 10)))
    mask = Picture(png((0, 0, 0, 0), (32, 24), "RGBA"))  # transparent: change everywhere
    base, masked = slot_files(workflow, (image,), mask)
    assert (
        base.data == image.data and base.name.startswith("pixelpipe-") and masked.alpha_of is base
    )
    assert slot_files(workflow, (image,), mask) == (base, masked)  # the same names again
    other = slot_files(workflow, (Picture(png((1, 2, 3))),), mask)
    assert other[0].name != base.name and other[1].name != masked.name
    with Image.open(io.BytesIO(masked.data)) as m:
        assert m.size == (64, 48) and m.getpixel((5, 5)) == (255, 255, 255, 0)  # resized
    with Image.open(io.BytesIO(with_alpha(base.data, masked.data))) as combined:
        assert combined.getpixel((1, 1)) == (200, 10, 10, 0)
    with pytest.raises(MissingInputs, match="loads 1 input image"):
        slot_files(workflow, (), None)


def test_a_mask_without_alpha_is_white_where_it_changes() -> None:
    grey = png((255,), (8, 8), "L")
    with Image.open(io.BytesIO(comfy_mask(grey, None))) as m:
        assert m.getpixel((0, 0)) == (255, 255, 255, 0)
    with Image.open(io.BytesIO(comfy_mask(png((0,), (8, 8), "L"), (4, 4)))) as m:
        assert m.size == (4, 4) and m.getpixel((0, 0)) == (0, 0, 0, 255)
    with Image.open(io.BytesIO(comfy_mask(None, (4, 4)))) as m:  # no mask: change everything
        assert m.getpixel((3, 3)) == (255, 255, 255, 0)


CATALOG = """\
[backends.comfy_a]
kind = "comfyui"
url = "http://10.0.0.9:8188"

[models.img2img]
label = "img2img"
formats = ["png"]
aspect_ratios = {{ "1:1" = [1024, 1024] }}
{limits}
backends = ["comfy_a"]
workflow = "flows/sdxl.json"

[models.img2img.workflow_inputs]
prompt = "6.text"
{inputs}
"""


def catalog(limits: str, inputs: str) -> str:
    return CATALOG.format(limits=limits, inputs=inputs)


def test_a_model_with_matching_slots_loads(tmp_path: Path) -> None:
    text = catalog(
        "max_input_images = 1\naccepts_mask = true\nstrength = { min = 0.1, max = 1.0, default = 0.6 }",
        'image = "10.image"\nmask = "12.image"\nstrength = "3.denoise"',
    )
    models = with_operator_models(load_catalog(), load(tmp_path, text, img2img(mask_node=True)))
    spec = models.get("img2img")
    assert spec.workflow is not None and spec.max_input_images == 1 and spec.accepts_mask


@pytest.mark.parametrize(
    ("limits", "inputs", "message"),
    [
        (
            "max_input_images = 2",
            'image = "10.image"',
            "takes 2 input image(s) (max_input_images), and its workflow",
        ),
        ("", 'image = "10.image"', "takes 0 input image(s)"),
        ("max_input_images = 1", "", "map each image to the image input of a LoadImage node"),
        (
            "max_input_images = 1\naccepts_mask = true",
            'image = "10.image"',
            "accepts a mask (accepts_mask), and its workflow",
        ),
        (
            "max_input_images = 1",
            'image = "10.image"\nmask = "12.image"',
            "loads a mask (12.image), and the model does not take one",
        ),
        (
            "max_input_images = 1\nstrength = { min = 0.1, max = 1.0, default = 0.5 }",
            'image = "10.image"',
            "takes strength, but its workflow",
        ),
    ],
)
def test_capabilities_and_slots_must_agree(
    tmp_path: Path, limits: str, inputs: str, message: str
) -> None:
    text = catalog(limits, inputs)
    error = refused(tmp_path, text, img2img(mask_node=True))
    assert error.startswith(at(tmp_path, text, "[models.img2img]")), error
    assert message in error


def test_a_wrong_slot_names_the_catalog_line(tmp_path: Path) -> None:
    text = catalog("max_input_images = 1", 'image = "3.seed"')
    error = refused(tmp_path, text, img2img())
    assert error.startswith(at(tmp_path, text, 'image = "3.seed"')), error
    assert "LoadImage" in error
