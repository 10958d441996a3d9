"""A model backed by a ComfyUI workflow: ``workflow``, ``workflow_inputs`` and ``output_node`` of
``[models.<name>]``, and which backends may serve it.

``workflow`` is an API-format workflow file (a path relative to the catalog file),
``[models.<name>.workflow_inputs]`` maps pixelpipe's parameters to ``"<node id>.<input name>"``
paths (a string or a list of them; placeholders in the workflow need no entry) and ``output_node``
names the node whose images are the result (default: the workflow's only SaveImage or
PreviewImage). Such a model runs only on backends of a kind that runs workflows
(``Known.workflow_kinds``), and a backend of such a kind serves only workflow models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixelpipe.catalog.operator_lines import FileLines
from pixelpipe.errors import ConfigError
from pixelpipe.workflows import MappingError, Workflow, read_template

WORKFLOW_KEYS = ("workflow", "workflow_inputs", "output_node")


class WorkflowReader(FileLines):
    # --- the model's workflow -------------------------------------------------------------
    def workflow(self, name: str, raw: Mapping[str, Any]) -> Workflow | None:
        if "workflow" not in raw:
            for key in ("workflow_inputs", "output_node"):
                if key in raw:
                    raise self.fail(
                        self.inputs_line(name)
                        if key == "workflow_inputs"
                        else self.line_of("models", name, key),
                        f'model {name}: {key} without a workflow; add workflow = "<file>.json" '
                        "(an API-format ComfyUI workflow, relative to this file)",
                    )
            return None
        path = self.workflow_path(name, raw["workflow"])
        try:
            template = read_template(path)
        except ConfigError as exc:
            at = f"{self.path}:{self.line_of('models', name, 'workflow')}"
            raise ConfigError(f"{exc} (the workflow of model {name}, {at})") from None
        inputs = self.workflow_inputs(name, raw)
        output = self.output_node(name, raw)
        try:
            return template.bind(inputs, output)
        except MappingError as exc:
            raise self.fail(
                self.mapping_line(name, exc.key), f"model {name}: {exc.detail}"
            ) from None

    def workflow_path(self, name: str, value: Any) -> Path:
        line = self.line_of("models", name, "workflow")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                line,
                f"model {name}: workflow must be the path of a workflow file, e.g. workflow = "
                '"workflows/flux.json" (relative to this file)',
            )
        path = Path(self.path).parent / value
        if not path.is_file():
            raise self.fail(
                line,
                f"model {name}: workflow {value!r} is not a file ({path}); the path is relative "
                "to the catalog file. Export the workflow from ComfyUI with Workflow → Export "
                "(API) and save it there",
            )
        return path

    def workflow_inputs(self, name: str, raw: Mapping[str, Any]) -> dict[str, list[str]]:
        table = raw.get("workflow_inputs", {})
        if not isinstance(table, dict):
            raise self.fail(
                self.inputs_line(name),
                f"model {name}: workflow_inputs must be a table ([models.{name}.workflow_inputs] "
                'prompt = "6.text")',
            )
        inputs: dict[str, list[str]] = {}
        for parameter, value in table.items():
            paths = [value] if isinstance(value, str) else value
            if (
                not isinstance(paths, list)
                or not paths
                or any(not isinstance(p, str) for p in paths)
            ):
                raise self.fail(
                    self.input_line(name, parameter),
                    f'model {name}: workflow_inputs {parameter} must be "<node id>.<input name>" '
                    'or a list of them (e.g. width = ["5.width", "30.width"])',
                )
            inputs[parameter] = paths
        return inputs

    def output_node(self, name: str, raw: Mapping[str, Any]) -> str | None:
        if "output_node" not in raw:
            return None
        node = raw["output_node"]
        if isinstance(node, bool) or not isinstance(node, str | int):
            raise self.fail(
                self.line_of("models", name, "output_node"),
                f'model {name}: output_node must be a node id, e.g. output_node = "9"',
            )
        return str(node)

    # --- lines ----------------------------------------------------------------------------
    def mapping_line(self, name: str, key: str | None) -> int:
        if key is None:
            return self.line_of("models", name, "workflow")
        if key == "output_node":
            return self.line_of("models", name, "output_node")
        return self.input_line(name, key)

    def inputs_header(self, name: str) -> int | None:
        """The index of the ``[models.<name>.workflow_inputs]`` line, if the file has one."""
        header = re.compile(
            rf"^\s*\[\s*models\s*\.\s*(\"{re.escape(name)}\"|{re.escape(name)})\s*\.\s*"
            r"workflow_inputs\s*\]"
        )
        return next((i for i, line in enumerate(self.lines) if header.match(line)), None)

    def inputs_line(self, name: str) -> int:
        start = self.inputs_header(name)
        return self.line_of("models", name, "workflow_inputs") if start is None else start + 1

    def input_line(self, name: str, parameter: str) -> int:
        """The line of ``parameter`` under ``[models.<name>.workflow_inputs]``, or of the inline
        ``workflow_inputs = {…}`` key."""
        key = re.compile(rf"^\s*(\"{re.escape(parameter)}\"|{re.escape(parameter)})\s*=")
        start = self.inputs_header(name)
        if start is None:
            return self.line_of("models", name, "workflow_inputs")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if key.match(self.lines[i]):
                return i + 1
        return start + 1

    # --- who may serve it -----------------------------------------------------------------
    def check_runner(
        self, name: str, provider: str, kind: str | None, workflow: bool, line: int
    ) -> None:
        """A workflow model only on backends whose kind runs workflows; such a backend only for
        workflow models. (The kinds come from ``Known.workflow_kinds``: the registrations of the
        ComfyUI kinds say they run workflows.)"""
        runs = kind is not None and kind in self.known.workflow_kinds
        if workflow and not runs:
            kinds = ", ".join(sorted(self.known.workflow_kinds)) or "none is installed"
            what = f"a {kind} backend" if kind is not None else "a hosted provider"
            raise self.fail(
                line,
                f"model {name} runs a workflow, and {provider} is {what}, which cannot run one; "
                f"list backends of a kind that runs ComfyUI workflows ({kinds})",
            )
        if runs and not workflow:
            raise self.fail(
                line,
                f"model {name}: backend {provider} ({kind}) runs ComfyUI workflows; give the "
                'model one: workflow = "<file>.json" (an API-format export)',
            )


def limits_error(source: str, name: str, workflow: Workflow, takes: Mapping[str, bool]) -> None:
    """A ConfigError when the model's limits and its workflow's mapping disagree: a parameter the
    model takes (so it is in the content key) must reach the workflow, and a placeholder must be
    fillable. ``takes``: parameter -> whether the model's requests carry it."""
    for parameter, carried in takes.items():
        mapped = parameter in workflow.targets
        if carried and not mapped:
            raise ConfigError(
                f"{source}: model {name} takes {parameter}, but its workflow "
                f'{workflow.source} has no input for it: mark it "%{parameter}%" in the '
                f"workflow or map it under [models.{name}.workflow_inputs], or take "
                f"{parameter} out of the model's limits"
            )
        marked = [r for r in workflow.targets.get(parameter, ()) if r in workflow.placeholders]
        if marked and not carried and parameter in ("steps", "guidance", "strength"):
            raise ConfigError(
                f"{source}: model {name}: input {marked[0]} of its workflow is the placeholder "
                f"for {parameter}, which the model does not take; give the model {parameter} = "
                "{ min = …, max = …, default = … }, or write the value into the workflow"
            )


def inputs_error(
    source: str, name: str, workflow: Workflow, max_input_images: int, accepts_mask: bool
) -> None:
    """A ConfigError when the model's input capabilities and its workflow's image and mask
    inputs disagree: each image a request may give has a slot (and no slot stays empty), and a
    model takes a mask exactly when its workflow loads one."""
    slots = workflow.image_slots
    table = f"[models.{name}.workflow_inputs]"
    if len(slots) != max_input_images:
        if not slots:
            fix = (
                f"map each image to the image input of a LoadImage node under {table}: "
                'image = "<node id>.image" (a list for several images, in order)'
            )
        else:
            fix = f"give the model max_input_images = {len(slots)}, or map as many slots"
        raise ConfigError(
            f"{source}: model {name} takes {max_input_images} input image(s) "
            f"(max_input_images), and its workflow {workflow.source} loads {len(slots)}"
            f"{' (' + ', '.join(map(str, slots)) + ')' if slots else ''}; {fix}"
        )
    mask = workflow.mask_slot
    if accepts_mask and mask is None:
        raise ConfigError(
            f"{source}: model {name} accepts a mask (accepts_mask), and its workflow "
            f'{workflow.source} loads none: map it under {table}: mask = "<node id>.image" '
            "of a LoadImageMask node, or of the LoadImage node of the image (the mask becomes "
            "its alpha)"
        )
    if mask is not None and not accepts_mask:
        raise ConfigError(
            f"{source}: model {name}: its workflow loads a mask ({mask}), and the model does "
            "not take one: give it accepts_mask = true, or take mask out of its "
            "workflow_inputs"
        )
