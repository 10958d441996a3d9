"""Binding a workflow to pixelpipe's parameters and its output node: what fits is taken, what
does not is refused saying which mapping key is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pixelpipe.workflows import InputRef, MappingError, load_workflow, read_template
from tests.workflows.conftest import ALL_PATHS, stock


def test_paths_and_placeholders_together_map_every_parameter(
    workflow_file: Callable[..., Path],
) -> None:
    graph = stock()
    graph["3"]["inputs"]["seed"] = "%seed%"
    paths = {k: v for k, v in ALL_PATHS.items() if k != "seed"}
    workflow = load_workflow(workflow_file(graph), paths)
    assert workflow.targets["seed"] == (InputRef("3", "seed"),)
    assert workflow.targets["prompt"] == (InputRef("6", "text"),)
    assert set(workflow.targets) == set(ALL_PATHS)
    assert workflow.output_node == "9"  # the only SaveImage


def test_one_parameter_may_fill_several_inputs(workflow_file: Callable[..., Path]) -> None:
    graph = stock()
    graph["10"] = {"inputs": {"width": 1024, "height": 1024}, "class_type": "ModelSamplingFlux"}
    workflow = load_workflow(
        workflow_file(graph), {"prompt": ["6.text"], "width": ["5.width", "10.width"]}
    )
    assert workflow.targets["width"] == (InputRef("10", "width"), InputRef("5", "width"))


@pytest.mark.parametrize(
    ("inputs", "key", "says"),
    [
        (
            {"sampler": ["3.sampler_name"]},
            "sampler",
            "'sampler' is not a parameter pixelpipe fills",
        ),
        ({"seed": ["3seed"]}, "seed", 'seed = "3seed" is not "<node id>.<input name>"'),
        ({"seed": ["30.seed"]}, "seed", "has no node '30'; its nodes: 3 KSampler, 4 Checkpoint"),
        (
            {"seed": ["3.noise_seed"]},
            "seed",
            "node 3 (KSampler) has no input 'noise_seed'; its inputs: seed, steps",
        ),
        (
            {"prompt": ["3.positive"]},
            "prompt",
            'prompt = "3.positive": that input is a link from node 6 (CLIPTextEncode), not a value',
        ),
        ({"seed": ["3.sampler_name"]}, "seed", "holds 'euler', and seed is a number"),
        ({"prompt": ["3.steps"]}, "prompt", "holds 20, and prompt is text"),
        (
            {"steps": ["3.seed"], "seed": ["3.seed"]},
            "steps",
            "input 3.seed is mapped to both seed and steps",
        ),
    ],
)
def test_a_mapping_that_does_not_fit_names_its_key(
    workflow_file: Callable[..., Path], inputs: dict[str, list[str]], key: str, says: str
) -> None:
    with pytest.raises(MappingError) as caught:
        load_workflow(workflow_file(), {"prompt": ["6.text"], **inputs})
    assert caught.value.key == key
    assert says in caught.value.detail


def test_a_path_to_another_parameters_placeholder_is_refused(
    workflow_file: Callable[..., Path],
) -> None:
    graph = stock()
    graph["3"]["inputs"]["seed"] = "%seed%"
    with pytest.raises(MappingError, match="placeholder '%seed%' of another parameter"):
        load_workflow(workflow_file(graph), {"prompt": ["6.text"], "steps": ["3.seed"]})


def test_a_workflow_without_the_prompt_mapped_is_refused_with_its_text_inputs(
    workflow_file: Callable[..., Path],
) -> None:
    path = workflow_file()
    with pytest.raises(MappingError) as caught:
        load_workflow(path, {"seed": ["3.seed"]})
    assert caught.value.key is None
    assert str(caught.value).startswith(f"{path}: nothing is mapped to prompt")
    assert "(text inputs here: 6.text, 7.text)" in str(caught.value)


def test_the_output_node_is_the_only_image_output_or_the_one_named(
    workflow_file: Callable[..., Path],
) -> None:
    graph = stock()
    graph["10"] = {"inputs": {"images": ["8", 0]}, "class_type": "PreviewImage"}
    template = read_template(workflow_file(graph))
    assert template.bind({"prompt": ["6.text"]}, "10").output_node == "10"
    with pytest.raises(MappingError) as caught:
        template.bind({"prompt": ["6.text"]})
    assert caught.value.key is None
    assert "2 image outputs (9 SaveImage, 10 PreviewImage)" in caught.value.detail
    assert 'output_node = "9"' in caught.value.detail


@pytest.mark.parametrize(
    ("output", "says"),
    [
        ("12", "output_node = '12': "),
        ("8", "output_node = '8' is a VAEDecode node, not an image output"),
    ],
)
def test_a_wrong_output_node_is_refused(
    workflow_file: Callable[..., Path], output: str, says: str
) -> None:
    with pytest.raises(MappingError) as caught:
        load_workflow(workflow_file(), {"prompt": ["6.text"]}, output)
    assert caught.value.key == "output_node"
    assert says in caught.value.detail


def test_a_workflow_without_an_image_output_is_refused(workflow_file: Callable[..., Path]) -> None:
    graph = stock()
    del graph["9"]
    with pytest.raises(MappingError, match="has no image output: add a SaveImage or PreviewImage"):
        load_workflow(workflow_file(graph), {"prompt": ["6.text"]})
