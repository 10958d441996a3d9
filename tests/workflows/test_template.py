"""Reading a workflow file: an API-format graph is taken, anything else is refused with the
file, the line and the fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelpipe.errors import ConfigError
from pixelpipe.workflows import InputRef, read_template
from tests.workflows.conftest import stock


def _line_of(path: Path, needle: str) -> int:
    return next(i + 1 for i, line in enumerate(path.read_text().splitlines()) if needle in line)


def test_an_exported_graph_is_read_with_the_inputs_its_placeholders_mark(
    workflow_file: Callable[..., Path],
) -> None:
    graph = stock()
    graph["6"]["inputs"]["text"] = "%prompt%"  # SillyTavern
    graph["7"]["inputs"]["text"] = "{{negative_prompt}}"
    graph["3"]["inputs"]["seed"] = "%seed%"
    graph["3"]["inputs"]["cfg"] = "%scale%"  # SillyTavern's name for the CFG
    graph["5"]["inputs"]["width"] = "{{ width }}"
    template = read_template(workflow_file(graph))
    assert dict(template.marked) == {
        "prompt": (InputRef("6", "text"),),
        "negative_prompt": (InputRef("7", "text"),),
        "seed": (InputRef("3", "seed"),),
        "guidance": (InputRef("3", "cfg"),),
        "width": (InputRef("5", "width"),),
    }


def test_a_file_that_is_not_json_names_the_line(workflow_file: Callable[..., Path]) -> None:
    path = workflow_file(text='{\n  "3": {\n    "inputs": {,\n')
    with pytest.raises(ConfigError) as caught:
        read_template(path)
    assert str(caught.value).startswith(f"{path}:3: not valid JSON")
    assert "Export (API)" in str(caught.value)


def test_the_editor_format_is_refused_with_export_api(workflow_file: Callable[..., Path]) -> None:
    ui = {"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": [[1, 4, 0, 3, 0]]}
    path = workflow_file(ui)
    with pytest.raises(ConfigError, match=r'has "nodes" and "links".*Export \(API\)') as caught:
        read_template(path)
    assert str(caught.value).startswith(f"{path}:1: ")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ([1, 2], "a JSON object: node id → node"),
        ({}, "a JSON object: node id → node"),
        ({"prompt": {"3": {}}, "client_id": "x"}, 'keep only the graph, the value of "prompt"'),
    ],
)
def test_what_is_not_a_graph_is_refused(
    workflow_file: Callable[..., Path], raw: object, says: str
) -> None:
    path = workflow_file(text=json.dumps(raw))
    with pytest.raises(ConfigError, match=says):
        read_template(path)


def test_a_node_without_class_type_names_its_line(workflow_file: Callable[..., Path]) -> None:
    graph = stock()
    del graph["8"]["class_type"]
    path = workflow_file(graph)
    with pytest.raises(ConfigError) as caught:
        read_template(path)
    line = _line_of(path, '"8": {')
    assert str(caught.value).startswith(f"{path}:{line}:")
    assert "node 8 is not an API-format node" in str(caught.value)


def test_a_link_to_a_missing_node_names_the_input(workflow_file: Callable[..., Path]) -> None:
    graph = stock()
    graph["8"]["inputs"]["vae"] = ["44", 2]
    path = workflow_file(graph)
    with pytest.raises(ConfigError) as caught:
        read_template(path)
    line = _line_of(path, '"vae"')
    assert str(caught.value).startswith(f"{path}:{line}:")
    assert "input 8.vae links to node 44, which the workflow does not have" in str(caught.value)


def test_a_placeholder_pixelpipe_does_not_fill_is_refused(
    workflow_file: Callable[..., Path],
) -> None:
    graph = stock()
    graph["3"]["inputs"]["sampler_name"] = "%sampler%"
    path = workflow_file(graph)
    with pytest.raises(ConfigError) as caught:
        read_template(path)
    assert str(caught.value).startswith(f"{path}:{_line_of(path, '%sampler%')}:")
    assert "'%sampler%', which pixelpipe does not fill" in str(caught.value)


def test_a_placeholder_inside_a_longer_text_is_refused(
    workflow_file: Callable[..., Path],
) -> None:
    graph = stock()
    graph["6"]["inputs"]["text"] = "masterpiece, {{prompt}}"
    path = workflow_file(graph)
    with pytest.raises(ConfigError, match="placeholder inside a longer text") as caught:
        read_template(path)
    assert str(caught.value).startswith(f"{path}:{_line_of(path, 'masterpiece')}:")


def test_a_text_with_a_percent_sign_is_not_a_placeholder(
    workflow_file: Callable[..., Path],
) -> None:
    graph = stock()
    graph["6"]["inputs"]["text"] = "100% cotton, 50% off"
    assert read_template(workflow_file(graph)).marked == {}


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"flow\.json: the workflow file cannot be read"):
        read_template(tmp_path / "flow.json")
