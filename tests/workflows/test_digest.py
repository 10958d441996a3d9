"""The workflow digest: what changes the picture changes it; what does not, does not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pixelpipe.workflows import load_workflow
from tests.workflows.conftest import ALL_PATHS, stock


def _digest(write: Callable[..., Path], graph: object = None, **kw: object) -> str:
    inputs = kw.get("inputs", ALL_PATHS)
    return load_workflow(write(graph), inputs, kw.get("output")).digest  # type: ignore[arg-type]


def test_the_digest_is_a_sha256_and_stable(workflow_file: Callable[..., Path]) -> None:
    digest = _digest(workflow_file)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert _digest(workflow_file) == digest


def test_editing_the_graph_or_the_mapping_changes_it(workflow_file: Callable[..., Path]) -> None:
    base = _digest(workflow_file)
    checkpoint = stock()
    checkpoint["4"]["inputs"]["ckpt_name"] = "juggernautXL_v9.safetensors"
    sampler = stock()
    sampler["3"]["inputs"]["sampler_name"] = "dpmpp_2m"
    preview = stock()
    preview["10"] = {"inputs": {"images": ["8", 0]}, "class_type": "PreviewImage"}
    fewer = {k: v for k, v in ALL_PATHS.items() if k != "negative_prompt"}
    digests = {
        _digest(workflow_file, checkpoint),
        _digest(workflow_file, sampler),
        _digest(workflow_file, preview, output="9"),
        _digest(workflow_file, preview, output="10"),
        _digest(workflow_file, inputs=fewer),
    }
    assert len(digests) == 5 and base not in digests


def test_titles_and_the_files_layout_do_not_change_it(workflow_file: Callable[..., Path]) -> None:
    base = _digest(workflow_file)
    retitled = stock()
    retitled["3"]["_meta"] = {"title": "Main sampler"}
    assert _digest(workflow_file, retitled) == base
    reordered = dict(reversed(list(stock().items())))
    one_line = workflow_file(text=json.dumps(reordered))
    assert load_workflow(one_line, ALL_PATHS).digest == base
