"""A model backed by a workflow in the operator's catalog file: a good entry becomes a model whose
requests carry the workflow's digest; every wrong one stops the start naming the file, the line
and the fix."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path

import pytest

from pixelpipe.catalog import load_catalog
from pixelpipe.catalog.merge import with_operator_models
from pixelpipe.catalog.operator_file import Known, OperatorFile, load_operator_file
from pixelpipe.errors import ConfigError
from pixelpipe.intake import canonicalize, new_request
from pixelpipe.key import content_key
from tests.workflows.conftest import stock

GOOD = """\
[backends.comfy_a]
kind = "comfyui"
url = "http://10.0.0.9:8188"

[backends.gpu_a]
kind = "cog"
url = "http://10.0.0.5:5000"

[models.sdxl-comfy]
label = "SDXL (ComfyUI)"
formats = ["png"]
aspect_ratios = { "1:1" = [1024, 1024], "16:9" = [1344, 768] }
steps = { min = 10, max = 50, default = 20 }
guidance = { min = 1.0, max = 12.0, default = 8.0 }
negative_prompt = true
backends = ["comfy_a"]
workflow = "flows/sdxl.json"
output_node = "9"

[models.sdxl-comfy.workflow_inputs]
prompt = "6.text"
negative_prompt = "7.text"
seed = "3.seed"
steps = "3.steps"
guidance = "3.cfg"
width = "5.width"
height = ["5.height"]
"""
WORKFLOW_KINDS = ("comfyui", "comfy_api")


def known(
    workflow_kinds: Collection[str] = WORKFLOW_KINDS, env: Mapping[str, str] | None = None
) -> Known:
    """What registry.operator_file hands in, with the two ComfyUI kinds installed."""
    builtin = load_catalog()
    kinds = {"comfyui", "comfy_api", "cog"}
    hosted: dict[str, dict[str, str]] = {}
    for spec in builtin.models.values():
        for provider, model_id in spec.provider_ids.items():
            if provider not in kinds:
                hosted.setdefault(provider, {})[spec.name] = model_id
    return Known(kinds, hosted, builtin.models, env or {}, workflow_kinds)


def write(tmp_path: Path, catalog: str, graph: object = None) -> Path:
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "sdxl.json").write_text(json.dumps(graph or stock(), indent=2))
    path = tmp_path / "catalog.toml"
    path.write_text(catalog)
    return path


def load(tmp_path: Path, catalog: str, graph: object = None, **kw: object) -> OperatorFile:
    return load_operator_file(write(tmp_path, catalog, graph), known(**kw))  # type: ignore[arg-type]


def refused(tmp_path: Path, catalog: str, graph: object = None, **kw: object) -> str:
    with pytest.raises(ConfigError) as caught:
        with_operator_models(load_catalog(), load(tmp_path, catalog, graph, **kw))
    return str(caught.value)


def line(text: str, needle: str) -> int:
    return next(i + 1 for i, row in enumerate(text.splitlines()) if needle in row)


def at(tmp_path: Path, text: str, needle: str) -> str:
    """How an error about the catalog line holding ``needle`` starts."""
    return f"{tmp_path / 'catalog.toml'}:{line(text, needle)}: "


def test_a_workflow_model_renders_and_keys_with_its_workflow(tmp_path: Path) -> None:
    operator = load(tmp_path, GOOD)
    workflow = operator.workflows()["sdxl-comfy"]
    assert workflow.output_node == "9" and workflow.source.endswith("flows/sdxl.json")
    assert [str(r) for r in workflow.targets["height"]] == ["5.height"]
    catalog = with_operator_models(load_catalog(), operator)
    spec = catalog.get("sdxl-comfy")
    assert spec.workflow is workflow and spec.providers == ("comfy_a",)
    req = canonicalize(new_request("a red fox", model="sdxl-comfy", seed=3), catalog)
    assert req.workflow_hash == workflow.digest
    assert content_key(req) != content_key(
        req.__class__(**{**req.to_dict(), "workflow_hash": None})
    )
    assert workflow.render(req)["3"]["inputs"] == {
        **stock()["3"]["inputs"],
        "seed": 3,
        "steps": 20,
        "cfg": 8.0,
    }
    assert catalog.get("flux-schnell").workflow is None  # the built-in models: untouched


def test_editing_the_workflow_file_changes_the_key(tmp_path: Path) -> None:
    first = canonicalize(
        new_request("a fox", model="sdxl-comfy", seed=1),
        with_operator_models(load_catalog(), load(tmp_path, GOOD)),
    )
    graph = stock()
    graph["4"]["inputs"]["ckpt_name"] = "juggernautXL_v9.safetensors"
    second = canonicalize(
        new_request("a fox", model="sdxl-comfy", seed=1),
        with_operator_models(load_catalog(), load(tmp_path, GOOD, graph)),
    )
    assert content_key(first) != content_key(second)


@pytest.mark.parametrize(
    ("old", "new", "where", "says"),
    [
        (
            '"flows/sdxl.json"',
            '"flows/nope.json"',
            "workflow =",
            "workflow 'flows/nope.json' is not a file",
        ),
        ('"flows/sdxl.json"', "3", "workflow =", "workflow must be the path of a workflow file"),
        (
            'prompt = "6.text"',
            'prompt = "66.text"',
            'prompt = "66',
            'model sdxl-comfy: prompt = "66.text": ',
        ),
        ('seed = "3.seed"', 'seed = "3.positive"', "seed =", "that input is a link from node 6"),
        (
            'seed = "3.seed"',
            "seed = 3",
            "seed =",
            'workflow_inputs seed must be "<node id>.<input name>" or a list of them',
        ),
        (
            'seed = "3.seed"',
            'sampler = "3.sampler_name"',
            "sampler =",
            "'sampler' is not a parameter pixelpipe fills",
        ),
        ('prompt = "6.text"\n', "", "workflow =", "nothing is mapped to prompt"),
        (
            'output_node = "9"',
            'output_node = "8"',
            "output_node",
            "output_node = '8' is a VAEDecode node, not an image output",
        ),
        ('output_node = "9"', "output_node = true", "output_node", "output_node must be a node id"),
        ('output_node = "9"', "outputnode = 9", "outputnode", "unknown key 'outputnode'"),
        (
            'backends = ["comfy_a"]',
            'backends = ["gpu_a"]',
            "backends =",
            "and gpu_a is a cog "
            "backend, which cannot run one; list backends of a kind that runs ComfyUI workflows "
            "(comfy_api, comfyui)",
        ),
        (
            'workflow = "flows/sdxl.json"\n',
            "",
            "[models.sdxl-comfy.workflow_inputs]",
            "workflow_inputs without a workflow",
        ),
    ],
)
def test_a_wrong_workflow_entry_names_its_line(
    tmp_path: Path, old: str, new: str, where: str, says: str
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new)
    message = refused(tmp_path, text)
    assert message.startswith(at(tmp_path, text, where)), message
    assert says in message, message


def test_workflow_inputs_written_inline_are_checked_at_their_line(tmp_path: Path) -> None:
    text = GOOD.split("[models.sdxl-comfy.workflow_inputs]")[0].replace(
        'output_node = "9"', 'workflow_inputs = { prompt = "6.clip" }\nsteps = "x"'
    )
    text = text.replace('steps = "x"', "")
    message = refused(tmp_path, text)
    assert message.startswith(at(tmp_path, text, "workflow_inputs"))
    assert 'prompt = "6.clip": that input is a link' in message


def test_a_broken_workflow_file_names_its_own_line_and_the_model(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    (tmp_path / "flows" / "sdxl.json").write_text('{\n  "3": {\n    "inputs": oops\n')
    with pytest.raises(ConfigError) as caught:
        load_operator_file(path, known())
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'flows' / 'sdxl.json'}:3: not valid JSON")
    assert message.endswith(
        f"(the workflow of model sdxl-comfy, {path}:{line(GOOD, 'workflow =')})"
    )


def test_a_hosted_provider_cannot_run_a_workflow(tmp_path: Path) -> None:
    text = GOOD + (
        '\n[models.schnell-comfy]\nextends = "flux-schnell"\nbackends = ["comfy_a", "replicate"]\n'
        'workflow = "flows/sdxl.json"\n\n[models.schnell-comfy.workflow_inputs]\nprompt = "6.text"\n'
    )
    message = refused(tmp_path, text)
    assert message.startswith(at(tmp_path, text, 'backends = ["comfy_a", "re'))
    assert "replicate is a hosted provider, which cannot run one" in message


def test_a_workflow_model_must_list_its_backends(tmp_path: Path) -> None:
    text = GOOD + (
        '\n[models.flux-schnell]\nworkflow = "flows/sdxl.json"\n\n'
        '[models.flux-schnell.workflow_inputs]\nprompt = "6.text"\n'
    )
    message = refused(tmp_path, text)
    assert message.startswith(at(tmp_path, text, "[models.flux-schnell]"))
    assert "model flux-schnell runs a workflow: list the backends that run it" in message


def test_a_workflow_backend_serves_only_workflow_models(tmp_path: Path) -> None:
    text = GOOD + (
        '\n[models.sdxl-plain]\nlabel = "SDXL"\nformats = ["png"]\n'
        'aspect_ratios = { "1:1" = [1024, 1024] }\nbackends = ["gpu_a", "comfy_a"]\n'
    )
    message = refused(tmp_path, text)
    assert message.startswith(at(tmp_path, text, '["gpu_a", "comfy_a"]'))
    assert "backend comfy_a (comfyui) runs ComfyUI workflows; give the model one" in message


def test_without_a_kind_that_runs_workflows_the_error_says_so(tmp_path: Path) -> None:
    message = refused(tmp_path, GOOD, workflow_kinds=())
    assert "runs ComfyUI workflows (none is installed)" in message


@pytest.mark.parametrize(
    ("drop", "parameter"),
    [
        ('steps = "3.steps"\n', "steps"),
        ('guidance = "3.cfg"\n', "guidance"),
        ('negative_prompt = "7.text"\n', "negative_prompt"),
        ('width = "5.width"\n', "width"),
    ],
)
def test_a_parameter_the_model_takes_must_reach_the_workflow(
    tmp_path: Path, drop: str, parameter: str
) -> None:
    message = refused(tmp_path, GOOD.replace(drop, ""))
    assert message.startswith(at(tmp_path, GOOD, "[models.sdxl-comfy]"))
    assert f"model sdxl-comfy takes {parameter}, but its workflow" in message
    assert f'mark it "%{parameter}%" in the workflow' in message


def test_one_size_needs_no_size_mapping(tmp_path: Path) -> None:
    text = GOOD.replace(', "16:9" = [1344, 768]', "")
    text = text.replace('width = "5.width"\n', "").replace('height = ["5.height"]\n', "")
    spec = with_operator_models(load_catalog(), load(tmp_path, text)).get("sdxl-comfy")
    assert spec.workflow is not None and "width" not in spec.workflow.targets


def test_a_steps_placeholder_needs_a_model_that_takes_steps(tmp_path: Path) -> None:
    graph = stock()
    graph["3"]["inputs"]["steps"] = "%steps%"
    text = GOOD.replace("steps = { min = 10, max = 50, default = 20 }\n", "").replace(
        'steps = "3.steps"\n', ""
    )
    message = refused(tmp_path, text, graph)
    assert re.search(
        r"input 3\.steps of its workflow is the placeholder for steps, which the "
        r"model does not take",
        message,
    ), message
