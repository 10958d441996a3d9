"""The node whose images are the result: a SaveImage or PreviewImage node."""

from __future__ import annotations

from pixelpipe.workflows.mapping import MappingError, listed
from pixelpipe.workflows.workflow import Graph

IMAGE_OUTPUTS = ("SaveImage", "PreviewImage")


def output_node(source: str, graph: Graph, chosen: str | None) -> str:
    """``chosen`` once checked; without one, the workflow's only image output."""
    outputs = [node_id for node_id, node in graph.items() if node["class_type"] in IMAGE_OUTPUTS]
    named = [f"{node_id} {graph[node_id]['class_type']}" for node_id in outputs]
    if chosen is not None:
        node = graph.get(chosen)
        if node is None:
            raise MappingError(
                source,
                "output_node",
                f"output_node = {chosen!r}: {source} has no node {chosen!r}; its image outputs: "
                f"{listed(named) or 'none'}",
            )
        if node["class_type"] not in IMAGE_OUTPUTS:
            raise MappingError(
                source,
                "output_node",
                f"output_node = {chosen!r} is a {node['class_type']} node, not an image output "
                f"({' or '.join(IMAGE_OUTPUTS)}); its image outputs: {listed(named) or 'none'}",
            )
        return chosen
    if len(outputs) == 1:
        return outputs[0]
    if not outputs:
        raise MappingError(
            source,
            None,
            f"the workflow has no image output: add a {' or '.join(IMAGE_OUTPUTS)} node after "
            "its VAE Decode, and export it again",
        )
    raise MappingError(
        source,
        None,
        f"the workflow has {len(outputs)} image outputs ({listed(named)}): say whose images "
        f'are the result with output_node = "{outputs[0]}"',
    )
