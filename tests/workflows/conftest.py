"""Workflow files written for a test: the stock SDXL graph of ComfyUI's API example, changed
per test."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Graph = dict[str, dict[str, Any]]

STOCK: Graph = {
    "3": {
        "inputs": {
            "seed": 156680208700286,
            "steps": 20,
            "cfg": 8,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
        "class_type": "KSampler",
        "_meta": {"title": "KSampler"},
    },
    "4": {
        "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
        "class_type": "CheckpointLoaderSimple",
    },
    "5": {
        "inputs": {"width": 1024, "height": 1024, "batch_size": 1},
        "class_type": "EmptyLatentImage",
    },
    "6": {"inputs": {"text": "a cat", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "7": {"inputs": {"text": "blurry", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode"},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage"},
}

ALL_PATHS = {
    "prompt": ["6.text"],
    "negative_prompt": ["7.text"],
    "seed": ["3.seed"],
    "steps": ["3.steps"],
    "guidance": ["3.cfg"],
    "width": ["5.width"],
    "height": ["5.height"],
}


def stock() -> Graph:
    return copy.deepcopy(STOCK)


@pytest.fixture
def workflow_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a graph (or raw text) as ComfyUI's Export (API) does: indent 2, one key a line."""

    def write(graph: Any = None, *, text: str | None = None, name: str = "flow.json") -> Path:
        path = tmp_path / name
        path.write_text(text if text is not None else json.dumps(graph or stock(), indent=2))
        return path

    return write
