"""``min_input_images``: a model that only edits refuses a request without its images at intake,
before anything is queued or spent; a ComfyUI workflow model needs every image slot filled."""

from __future__ import annotations

import dataclasses

import pytest

from pixelpipe.catalog import Catalog, load_catalog
from pixelpipe.catalog.catalog import spec_from_raw
from pixelpipe.catalog.merge import with_operator_models
from pixelpipe.catalog.operator_file import load_operator_file
from pixelpipe.errors import InvalidRequest
from pixelpipe.intake import canonicalize, new_request
from tests.workflows.test_catalog import known
from tests.workflows.test_examples import EXAMPLES

BASE = load_catalog()
UPLOAD, DIGEST = "upl_" + "b" * 64, "sha256:" + "b" * 64


def catalog_with(**limits: int) -> Catalog:
    spec = dataclasses.replace(BASE.get("preview"), name="edit-only", **limits)
    return Catalog({**BASE.models, "edit-only": spec})


def test_a_model_that_only_edits_refuses_text_alone_naming_what_to_give() -> None:
    catalog = catalog_with(min_input_images=1, max_input_images=1)
    with pytest.raises(InvalidRequest) as err:
        canonicalize(new_request("a boat", model="edit-only"), catalog)
    assert err.value.extra["field"] == "images"
    assert "edit-only edits images: give 1 input image in images" in err.value.detail
    ok = new_request("a boat", model="edit-only", images=[UPLOAD])
    assert canonicalize(ok, catalog, inputs={UPLOAD: DIGEST}).images == (DIGEST,)


def test_a_range_says_at_least_and_at_most() -> None:
    catalog = catalog_with(min_input_images=2, max_input_images=4)
    with pytest.raises(InvalidRequest, match=r"at least 2 input images \(at most 4\)"):
        canonicalize(
            new_request("x", model="edit-only", images=[UPLOAD]), catalog, inputs={UPLOAD: DIGEST}
        )


def test_a_minimum_above_the_maximum_is_refused_when_the_catalog_loads() -> None:
    raw = {"label": "x", "formats": ["png"], "aspect_ratios": {"1:1": [64, 64]}}
    with pytest.raises(ValueError, match="min_input_images = 2 must be between 0 and"):
        spec_from_raw("x", raw | {"min_input_images": 2, "max_input_images": 1})
    assert spec_from_raw("x", raw).min_input_images == 0  # text-to-image by default


def test_a_workflow_model_needs_every_image_slot_filled() -> None:
    operator = load_operator_file(EXAMPLES / "catalog.toml", known(env={"COMFY_API_KEY": "k"}))
    catalog = with_operator_models(BASE, operator)
    spec = catalog.get("sdxl-img2img-comfy")
    assert (spec.min_input_images, spec.max_input_images) == (1, 1)
    assert catalog.get("sdxl-comfy").min_input_images == 0  # text to image: none needed
    with pytest.raises(InvalidRequest, match="sdxl-img2img-comfy edits images"):
        canonicalize(new_request("a boat", model="sdxl-img2img-comfy"), catalog)
