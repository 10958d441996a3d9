"""Binding a template's inputs to pixelpipe's parameters: ``"<node id>.<input name>"`` paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pixelpipe.errors import ConfigError
from pixelpipe.workflows.parameters import PARAMETERS, canonical, kind_of, placeholder_name
from pixelpipe.workflows.workflow import Graph, InputRef

_LISTED = 12  # nodes or inputs named in a message before "…"
# Node classes that load an uploaded file from ComfyUI's input folder (their input "image"),
# and the parameters each may receive: an image (LoadImage), the mask (LoadImageMask, or a
# LoadImage whose alpha is the mask: ComfyUI's MASK output is 1 - alpha).
FILE_LOADERS = {"LoadImage": ("image", "mask"), "LoadImageMask": ("mask",)}


class MappingError(ConfigError):
    """A mapping that does not fit the workflow. ``key`` is the mapping's key it is about (a
    parameter, or "output_node"; None: the mapping as a whole), ``detail`` the message without a
    place, so that the catalog file can name its own line."""

    def __init__(self, source: str, key: str | None, detail: str) -> None:
        super().__init__(f"{source}: {detail}")
        self.key, self.detail = key, detail


def is_link(value: Any) -> bool:
    """``["4", 1]``: output 1 of node 4, in API format."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (", …" if len(names) > _LISTED else "")


def node_names(graph: Graph) -> list[str]:
    return [f"{node_id} {node['class_type']}" for node_id, node in graph.items()]


class Binder:
    """Checks each explicit path against the graph (one parameter at a time)."""

    def __init__(self, source: str, graph: Graph) -> None:
        self.source, self.graph = source, graph

    def fail(self, key: str | None, detail: str) -> MappingError:
        return MappingError(self.source, key, detail)

    def paths(self, inputs: Mapping[str, Sequence[str]]) -> dict[str, tuple[InputRef, ...]]:
        bound: dict[str, tuple[InputRef, ...]] = {}
        for key, paths in inputs.items():
            if key not in PARAMETERS:
                raise self.fail(
                    key,
                    f"{key!r} is not a parameter pixelpipe fills; map one of: "
                    f"{', '.join(PARAMETERS)}",
                )
            refs = tuple(self.path(key, path) for path in paths)
            if len(set(refs)) != len(refs):
                raise self.fail(key, f"{key} lists an input twice; list each input once")
            if key == "mask" and len(refs) != 1:
                raise self.fail(
                    key,
                    f"mask = {list(paths)}: a request has one mask; map it to one input "
                    '(mask = "<node id>.image" of a LoadImageMask or LoadImage node)',
                )
            bound[key] = refs
        return bound

    def path(self, key: str, path: str) -> InputRef:
        node_id, dot, name = path.partition(".")
        if not dot or not node_id or not name:
            raise self.fail(
                key,
                f'{key} = "{path}" is not "<node id>.<input name>" (e.g. "6.text": input text '
                "of node 6, as the API-format file writes them)",
            )
        node = self.graph.get(node_id)
        if node is None:
            raise self.fail(
                key,
                f'{key} = "{path}": '
                f"{self.source} has no node {node_id!r}; its nodes: "
                f"{listed(node_names(self.graph))}",
            )
        inputs = node["inputs"]
        if name not in inputs:
            raise self.fail(
                key,
                f'{key} = "{path}": '
                f"node {node_id} ({node['class_type']}) has no input {name!r}; "
                f"its inputs: {listed(list(inputs))}",
            )
        self.fits(key, InputRef(node_id, name), inputs[name])
        return InputRef(node_id, name)

    def fits(self, key: str, ref: InputRef, value: Any) -> None:
        if is_link(value):
            source = self.graph.get(value[0], {}).get("class_type", "?")
            raise self.fail(
                key,
                f'{key} = "{ref}": that input is a link from node {value[0]} ({source}), not a '
                'value; map an input that holds a value (as "6.text" holds the text of a '
                "CLIPTextEncode node)",
            )
        if isinstance(value, str) and (name := placeholder_name(value)) is not None:
            if canonical(name) != key:
                raise self.fail(
                    key,
                    f'{key} = "{ref}": that input is the placeholder {value!r} of another '
                    "parameter; map each input to one parameter",
                )
            return
        wanted = kind_of(key)
        if wanted == "file":
            self.loads_files(key, ref, value)
            return
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if (wanted == "text") != isinstance(value, str) or (wanted == "number" and not number):
            raise self.fail(
                key,
                f'{key} = "{ref}": that input holds {value!r}, and {key} is '
                f"{'text' if wanted == 'text' else 'a number'}; map the input that takes the {key}",
            )

    def loads_files(self, key: str, ref: InputRef, value: Any) -> None:
        """An image or mask goes to the ``image`` input (a file name) of a loader node."""
        kind = self.graph[ref.node]["class_type"]
        takes = FILE_LOADERS.get(kind, ())
        if key not in takes or ref.name != "image":
            loaders = [c for c, keys in FILE_LOADERS.items() if key in keys]
            nodes = [
                f"{node_id}.image ({node['class_type']})"
                for node_id, node in self.graph.items()
                if node["class_type"] in loaders
            ]
            raise self.fail(
                key,
                f'{key} = "{ref}": node {ref.node} is a {kind} node and that input is not the '
                f"file a {' or '.join(loaders)} node loads; map the input image of one "
                f"({listed(nodes) or 'the workflow has none: add a Load Image node'})",
            )
        if not isinstance(value, str):
            raise self.fail(key, f'{key} = "{ref}": that input holds {value!r}, not a file name')
