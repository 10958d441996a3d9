"""The image-to-image and inpainting examples in examples/comfyui/ load through the catalog file
and render with the uploaded file's name in their Load Image node."""

from __future__ import annotations

from pixelpipe.catalog import load_catalog
from pixelpipe.catalog.merge import with_operator_models
from pixelpipe.catalog.operator_file import load_operator_file
from pixelpipe.intake import CanonicalRequest
from pixelpipe.workflows import InputRef
from tests.workflows.test_catalog import known
from tests.workflows.test_examples import EXAMPLES


def test_the_img2img_and_inpaint_examples_are_models_with_image_slots() -> None:
    operator = load_operator_file(EXAMPLES / "catalog.toml", known(env={"COMFY_API_KEY": "k"}))
    catalog = with_operator_models(load_catalog(), operator)
    img2img, inpaint = catalog.get("sdxl-img2img-comfy"), catalog.get("sdxl-inpaint-comfy")
    assert (img2img.max_input_images, img2img.accepts_mask) == (1, False)
    assert (inpaint.max_input_images, inpaint.accepts_mask) == (1, True)
    slot = InputRef("10", "image")
    for spec in (img2img, inpaint):
        workflow = spec.workflow
        assert workflow is not None and workflow.image_slots == (slot,)
        req = CanonicalRequest(spec.name, "a boat", 5, 1024, 1024, "png", steps=20, strength=0.5)
        graph = workflow.render(req, {slot: "pixelpipe-abc.png"})
        assert graph["10"]["inputs"]["image"] == "pixelpipe-abc.png"
        assert graph["3"]["inputs"]["denoise"] == 0.5
        assert graph["11"]["class_type"] == "VAEEncode"
    assert inpaint.workflow is not None and inpaint.workflow.mask_slot == slot
    assert inpaint.workflow.graph["12"]["inputs"]["mask"] == ["10", 1]  # LoadImage's MASK
