"""Rendering a request into the concrete graph: every mapped input set, typed as ComfyUI takes
it; the template itself never changes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelpipe.errors import ConfigError
from pixelpipe.intake import CanonicalRequest
from pixelpipe.workflows import load_workflow
from tests.workflows.conftest import ALL_PATHS, stock

REQUEST = CanonicalRequest(
    model="sdxl-comfy",
    prompt="a red fox",
    seed=42,
    width=1344,
    height=768,
    format="png",
    negative_prompt="blurry",
    steps=30,
    guidance=7,  # an int where a float belongs: rendered as 7.0
)


def test_every_mapped_input_gets_the_requests_value_typed(
    workflow_file: Callable[..., Path],
) -> None:
    workflow = load_workflow(workflow_file(), ALL_PATHS)
    graph = workflow.render(REQUEST)
    sampler = graph["3"]["inputs"]
    assert (sampler["seed"], sampler["steps"], sampler["cfg"]) == (42, 30, 7.0)
    assert type(sampler["seed"]) is int and type(sampler["cfg"]) is float
    assert graph["5"]["inputs"] == {"width": 1344, "height": 768, "batch_size": 1}
    assert graph["6"]["inputs"]["text"] == "a red fox"
    assert graph["7"]["inputs"]["text"] == "blurry"
    assert sampler["model"] == ["4", 0] and sampler["sampler_name"] == "euler"  # the rest as is
    assert workflow.graph["3"]["inputs"]["seed"] == 156680208700286  # the template unchanged


def test_placeholders_are_replaced_by_values_of_their_type(
    workflow_file: Callable[..., Path],
) -> None:
    graph = stock()
    for node, name, mark in [
        ("6", "text", "%prompt%"),
        ("7", "text", "%negative_prompt%"),
        ("3", "seed", "%seed%"),
        ("3", "steps", "{{steps}}"),
        ("3", "cfg", "%scale%"),
        ("5", "width", "%width%"),
        ("5", "height", "%height%"),
    ]:
        graph[node]["inputs"][name] = mark
    before = copy.deepcopy(graph)
    workflow = load_workflow(workflow_file(graph))
    rendered = workflow.render(REQUEST)
    assert rendered["3"]["inputs"]["seed"] == 42 and rendered["3"]["inputs"]["steps"] == 30
    assert rendered["3"]["inputs"]["cfg"] == 7.0 and rendered["5"]["inputs"]["width"] == 1344
    assert rendered["6"]["inputs"]["text"] == "a red fox"
    assert workflow.graph == before


def test_no_negative_prompt_empties_its_placeholder_and_keeps_a_mapped_value(
    workflow_file: Callable[..., Path],
) -> None:
    plain = CanonicalRequest(
        model="m", prompt="a fox", seed=1, width=1024, height=1024, format="png"
    )
    graph = stock()
    graph["7"]["inputs"]["text"] = "%negative_prompt%"
    rendered = load_workflow(workflow_file(graph), {"prompt": ["6.text"]}).render(plain)
    assert rendered["7"]["inputs"]["text"] == ""  # never the placeholder itself
    by_path = load_workflow(workflow_file(), {"prompt": ["6.text"], "negative_prompt": ["7.text"]})
    assert by_path.render(plain)["7"]["inputs"]["text"] == "blurry"  # the workflow's own
    assert by_path.render(plain)["3"]["inputs"]["steps"] == 20


def test_a_number_placeholder_the_request_cannot_fill_is_an_error(
    workflow_file: Callable[..., Path],
) -> None:
    graph = stock()
    graph["3"]["inputs"]["steps"] = "%steps%"
    workflow = load_workflow(workflow_file(graph), {"prompt": ["6.text"]})
    plain = CanonicalRequest(
        model="m", prompt="a fox", seed=1, width=1024, height=1024, format="png"
    )
    with pytest.raises(ConfigError, match=r"input 3\.steps is the placeholder for steps"):
        workflow.render(plain)


def test_a_node_is_described_by_its_title_and_class(workflow_file: Callable[..., Path]) -> None:
    graph = stock()
    graph["6"]["_meta"] = {"title": "Positive"}
    workflow = load_workflow(workflow_file(graph), {"prompt": ["6.text"]})
    assert workflow.describe_node("6") == "node 6 (Positive, CLIPTextEncode)"
    assert workflow.describe_node("3") == "node 3 (KSampler)"
    assert workflow.describe_node("77") == "node 77"
