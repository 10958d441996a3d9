"""Reading an API-format workflow file and binding it to a mapping and an output node."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelpipe.errors import ConfigError
from pixelpipe.workflows.digest import workflow_digest
from pixelpipe.workflows.lines import JsonLines
from pixelpipe.workflows.mapping import Binder, MappingError, is_link, listed
from pixelpipe.workflows.outputs import output_node
from pixelpipe.workflows.parameters import (
    FILES,
    INSIDE,
    PARAMETERS,
    REQUIRED,
    VALUES,
    canonical,
    placeholder_name,
)
from pixelpipe.workflows.workflow import Graph, InputRef, Workflow

EXPORT = "open it in ComfyUI and use Workflow → Export (API)"


@dataclass(frozen=True, slots=True)
class Template:
    """A checked API-format graph and the inputs its placeholders mark, not yet bound."""

    source: str
    graph: Graph
    marked: Mapping[str, tuple[InputRef, ...]]  # parameter -> inputs holding its placeholder

    def bind(
        self, inputs: Mapping[str, Sequence[str]] | None = None, output: str | None = None
    ) -> Workflow:
        """The workflow with ``inputs`` (parameter -> ``"<node id>.<input name>"`` paths) added
        to the placeholders, and its output node (default: its only image output). A mapping
        that does not fit raises :class:`MappingError`."""
        binder = Binder(self.source, self.graph)
        explicit = binder.paths(inputs or {})
        targets: dict[str, tuple[InputRef, ...]] = {}
        owner: dict[InputRef, str] = {}
        for parameter in PARAMETERS:
            found = [*explicit.get(parameter, ()), *self.marked.get(parameter, ())]
            # the images fill their slots in the request's order; the rest has no order
            refs = list(dict.fromkeys(found)) if parameter == "image" else sorted(set(found))
            for ref in refs:
                first = owner.setdefault(ref, parameter)
                if first != parameter and (first, parameter) != ("image", "mask"):
                    raise binder.fail(
                        parameter, f"input {ref} is mapped to both {owner[ref]} and {parameter}"
                    )  # (an image slot may also take the mask: as that image's alpha)
            if refs:
                targets[parameter] = tuple(refs)
        self.require(targets)
        node = output_node(self.source, self.graph, output)
        placeholders = frozenset(ref for refs in self.marked.values() for ref in refs)
        return Workflow(
            source=self.source,
            graph=self.graph,
            targets=targets,
            placeholders=placeholders,
            output_node=node,
            digest=workflow_digest(self.graph, targets, node),
        )

    def require(self, targets: Mapping[str, tuple[InputRef, ...]]) -> None:
        for parameter in REQUIRED:
            if parameter not in targets:
                encoders = [
                    f"{node_id}.text"
                    for node_id, node in self.graph.items()
                    if "text" in node["inputs"] and not is_link(node["inputs"]["text"])
                ]
                hint = f" (text inputs here: {listed(encoders)})" if encoders else ""
                raise MappingError(
                    self.source,
                    None,
                    f'nothing is mapped to {parameter}: write "%{parameter}%" as the value of '
                    f'its input in the workflow, or map it: {parameter} = "<node id>.<input>"'
                    f"{hint}",
                )


def load_workflow(
    path: Path, inputs: Mapping[str, Sequence[str]] | None = None, output: str | None = None
) -> Workflow:
    """:func:`read_template` then :meth:`Template.bind`."""
    return read_template(path).bind(inputs, output)


def read_template(path: Path) -> Template:
    """The checked template at ``path``; a ConfigError naming the file, the line and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{path}: the workflow file cannot be read ({reason})") from None
    return _Reader(JsonLines(str(path), text)).read(text)


class _Reader:
    def __init__(self, lines: JsonLines) -> None:
        self.lines = lines

    def fail(self, line: int, message: str) -> ConfigError:
        return ConfigError(self.lines.at(line, message))

    def read(self, text: str) -> Template:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.fail(
                exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno}); {EXPORT} again"
            ) from None
        graph = self.graph(raw)
        for node_id, node in graph.items():
            self.node(node_id, node, graph)
        return Template(self.lines.path, graph, self.placeholders(graph))

    def graph(self, raw: Any) -> Graph:
        if isinstance(raw, dict) and isinstance(raw.get("nodes"), list):
            raise self.fail(
                1,
                'this is a workflow saved for the editor (it has "nodes" and "links"), not the '
                f"API format pixelpipe sends; {EXPORT} and use that file",
            )
        if not isinstance(raw, dict) or not raw:
            raise self.fail(1, f"an API-format workflow is a JSON object: node id → node; {EXPORT}")
        if set(raw) == {"prompt"} or "client_id" in raw:
            raise self.fail(
                1,
                'this is a request to ComfyUI ({"prompt": …}); keep only the graph, the value '
                'of "prompt"',
            )
        return raw

    def node(self, node_id: str, node: Any, graph: Graph) -> None:
        line = self.lines.node(node_id)
        if "." in node_id:
            raise self.fail(line, f"node id {node_id!r} holds a dot; {EXPORT} again")
        ok = isinstance(node, dict) and isinstance(node.get("class_type"), str)
        if not ok or not isinstance(node.get("inputs"), dict):
            raise self.fail(
                line,
                f'node {node_id} is not an API-format node ({{"class_type": …, "inputs": {{…}}}}); '
                f"{EXPORT}",
            )
        for name, value in node["inputs"].items():
            if is_link(value) and value[0] not in graph:
                raise self.fail(
                    self.lines.input(node_id, name),
                    f"input {node_id}.{name} links to node {value[0]}, which the workflow does "
                    f"not have; {EXPORT} again",
                )

    def placeholders(self, graph: Graph) -> dict[str, tuple[InputRef, ...]]:
        marked: dict[str, list[InputRef]] = {}
        for node_id, node in graph.items():
            for name, value in node["inputs"].items():
                if not isinstance(value, str):
                    continue
                parameter = self.placeholder(node_id, name, value)
                if parameter is not None:
                    marked.setdefault(parameter, []).append(InputRef(node_id, name))
        return {p: tuple(sorted(refs)) for p, refs in marked.items()}

    def placeholder(self, node_id: str, name: str, value: str) -> str | None:
        written = placeholder_name(value)
        if written is None:
            if INSIDE.search(value):
                raise self.fail(
                    self.lines.input(node_id, name),
                    f"input {node_id}.{name} has a placeholder inside a longer text ({value!r}); "
                    "a placeholder is filled only when it is the whole value: write it alone, "
                    'e.g. "%prompt%"',
                )
            return None
        parameter = canonical(written)
        if parameter in FILES:
            raise self.fail(
                self.lines.input(node_id, name),
                f"input {node_id}.{name} is the placeholder {value!r}; input images and masks "
                f'are mapped in the catalog file instead ({parameter} = "{node_id}.{name}" '
                "under [models.<name>.workflow_inputs]): keep the file name ComfyUI exported",
            )
        if parameter is None:
            raise self.fail(
                self.lines.input(node_id, name),
                f"input {node_id}.{name} is the placeholder {value!r}, which pixelpipe does not "
                f"fill (it fills {', '.join(VALUES)}; guidance is also %scale% or %cfg%, "
                "strength %denoise%); "
                "write the value itself into the workflow",
            )
        return parameter
