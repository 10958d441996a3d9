"""A checked workflow bound to its mapping: what a ComfyUI backend renders a request into."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pixelpipe.errors import ConfigError
from pixelpipe.workflows.parameters import DECIMAL, FILES, INTEGER, Parameters

Graph = dict[str, dict[str, Any]]  # node id -> {"class_type", "inputs", "_meta"?}


@dataclass(frozen=True, slots=True, order=True)
class InputRef:
    """One input of one node: ``"<node id>.<input name>"`` (node ids hold no dot)."""

    node: str
    name: str

    def __str__(self) -> str:
        return f"{self.node}.{self.name}"


@dataclass(frozen=True, slots=True)
class Workflow:
    """An API-format graph, the inputs each parameter fills, and the node whose images are the
    result. ``digest`` (sha256 of the graph and the mapping) is part of the content key."""

    source: str  # the workflow file
    graph: Mapping[str, Mapping[str, Any]]
    targets: Mapping[str, tuple[InputRef, ...]]  # parameter -> the inputs it fills
    placeholders: frozenset[InputRef]  # inputs whose template value is a placeholder
    output_node: str
    digest: str

    @property
    def image_slots(self) -> tuple[InputRef, ...]:
        """The inputs the request's images go to, in order (LoadImage nodes' ``image``)."""
        return self.targets.get("image", ())

    @property
    def mask_slot(self) -> InputRef | None:
        """The input the mask goes to: a LoadImageMask's ``image``, or an image slot (the mask
        is then that image's alpha, as ComfyUI's mask editor saves it)."""
        return next(iter(self.targets.get("mask", ())), None)

    def render(self, params: Parameters, files: Mapping[InputRef, Any] | None = None) -> Graph:
        """The concrete graph for one request: every mapped input set, typed as ComfyUI expects
        (ints for seed, steps and size; a float for guidance and strength; text for the
        prompts). The seed is always the request's own: the workflow's seed mode (randomize,
        fixed) plays no part. ``files``: what each image or mask input loads (the name ComfyUI
        gave the upload, or a Comfy API v2 asset reference); every such input needs one."""
        graph: Graph = copy.deepcopy(dict(self.graph))  # type: ignore[arg-type]
        for ref in (*self.image_slots, *self.targets.get("mask", ())):
            if files is None or ref not in files:
                raise ConfigError(
                    f"{self.source}: input {ref} loads an input image, and none was uploaded for it"
                )
            graph[ref.node]["inputs"][ref.name] = files[ref]
        for parameter, refs in self.targets.items():
            if parameter in FILES:
                continue
            value = getattr(params, parameter)
            for ref in refs:
                if value is not None:
                    graph[ref.node]["inputs"][ref.name] = _typed(parameter, value)
                elif ref in self.placeholders:
                    graph[ref.node]["inputs"][ref.name] = _empty(parameter, ref, self.source)
        return graph

    def describe_node(self, node_id: str) -> str:
        """How an error names a node: ``node 3 (KSampler)``, with its title when it has one."""
        node = self.graph.get(node_id)
        if node is None:
            return f"node {node_id}"
        title = node.get("_meta", {}).get("title") if isinstance(node.get("_meta"), dict) else None
        kind = node.get("class_type", "?")
        named = f"{title}, {kind}" if title and title != kind else kind
        return f"node {node_id} ({named})"


def _typed(parameter: str, value: Any) -> Any:
    if parameter in INTEGER:
        return int(value)
    if parameter in DECIMAL:
        return float(value)
    return str(value)


def _empty(parameter: str, ref: InputRef, source: str) -> str:
    if parameter in INTEGER or parameter in DECIMAL:
        raise ConfigError(
            f"{source}: input {ref} is the placeholder for {parameter}, but the request has "
            f"none: give the model a {parameter} range, or write a value into the workflow"
        )
    return ""  # no negative prompt: an empty text, never the placeholder itself
