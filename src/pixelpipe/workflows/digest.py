"""The workflow's digest: sha256 of the canonical JSON of its graph, mapping and output node.

It goes into the content key of the model's images (ADR 0002), so that editing the workflow —
another checkpoint, sampler, LoRA, a changed mapping — never serves an image the old one made.
Node titles (``_meta``) are left out: renaming a node in the editor draws the same picture.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from pixelpipe.workflows.workflow import Graph, InputRef

DIGEST_VERSION = "w1"  # bump when what goes in changes (every workflow model's keys then change)


def workflow_digest(graph: Graph, targets: Mapping[str, tuple[InputRef, ...]], output: str) -> str:
    identity = {
        "v": DIGEST_VERSION,
        "graph": {
            node_id: {k: v for k, v in node.items() if k != "_meta"}
            for node_id, node in graph.items()
        },
        "inputs": {parameter: [str(ref) for ref in refs] for parameter, refs in targets.items()},
        "output_node": output,
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
