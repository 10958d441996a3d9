"""What the fake ComfyUI reads from an API-format graph: the order nodes run in, each node's
cache signature, the sampler's steps and the picture's inputs (positive prompt text, seed, size,
batch), and the PNG and preview it makes from them (see :mod:`pixelpipe.fakes.comfyui_run`)."""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image, PngImagePlugin

from pixelpipe.fakes.render import render


def inputs_of(prompt: dict[str, Any], node_id: str) -> dict[str, Any]:
    return dict(prompt[node_id].get("inputs") or {})


def links(prompt: dict[str, Any], node_id: str) -> list[str]:
    values = inputs_of(prompt, node_id).values()
    return [str(v[0]) for v in values if isinstance(v, list) and len(v) == 2]


def run_order(prompt: dict[str, Any], outputs: list[str]) -> list[str]:
    """Every node the outputs need, each after the nodes it reads from."""
    ordered: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in ordered:
            return
        for source in links(prompt, node_id):
            visit(source)
        ordered.append(node_id)

    for out in outputs:
        visit(out)
    return ordered


def signature(prompt: dict[str, Any], node_id: str) -> str:
    node = prompt[node_id]
    inputs = {
        k: (signature(prompt, str(v[0])), v[1])
        if isinstance(v, list) and len(v) == 2 and str(v[0]) in prompt
        else v
        for k, v in inputs_of(prompt, node_id).items()
    }
    return json.dumps([node["class_type"], inputs], sort_keys=True, default=str)


def find(prompt: dict[str, Any], classes: tuple[str, ...]) -> str | None:
    return next((n for n, node in prompt.items() if node.get("class_type") in classes), None)


def sampler_steps(prompt: dict[str, Any], node_id: str) -> int:
    inputs = inputs_of(prompt, node_id)
    if "steps" not in inputs:
        sched = find(prompt, ("BasicScheduler",))
        inputs = inputs_of(prompt, sched) if sched else {"steps": 20}
    return max(1, int(inputs.get("steps", 20)))


def picture_inputs(prompt: dict[str, Any]) -> tuple[str, int, tuple[int, int, int]]:
    """(positive prompt text, seed, (width, height, batch)) read from the graph's inputs."""
    sampler = find(prompt, ("KSampler",))
    seed_node = find(prompt, ("RandomNoise",))
    seed = (
        int(inputs_of(prompt, sampler).get("seed", 0))
        if sampler
        else (int(inputs_of(prompt, seed_node).get("noise_seed", 0)) if seed_node else 0)
    )
    text = positive_text(prompt, sampler)
    latent = find(prompt, ("EmptyLatentImage", "EmptySD3LatentImage"))
    li = inputs_of(prompt, latent) if latent else {}
    w, h = (max(8, int(li.get(k, 512)) // 8 * 8) for k in ("width", "height"))
    return text, seed, (w, h, max(1, int(li.get("batch_size", 1))))


def positive_text(prompt: dict[str, Any], sampler: str | None) -> str:
    start = inputs_of(prompt, sampler).get("positive") if sampler else None
    if start is None:
        guider = find(prompt, ("BasicGuider",))
        start = inputs_of(prompt, guider).get("conditioning") if guider else None
    seen = 0
    while isinstance(start, list) and seen < 16:  # follow FluxGuidance etc. to the encoder
        node = prompt.get(str(start[0]), {})
        if node.get("class_type") == "CLIPTextEncode":
            return str(node.get("inputs", {}).get("text", ""))
        start = (node.get("inputs") or {}).get("conditioning")
        seen += 1
    encoder = find(prompt, ("CLIPTextEncode",))
    return str(inputs_of(prompt, encoder).get("text", "")) if encoder else ""


def png(data: bytes, prompt: dict[str, Any]) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, format="PNG", pnginfo=info, compress_level=4)
    return out.getvalue()


def preview(text: str, seed: int, width: int, height: int, done: float) -> bytes:
    """A small JPEG of the image "forming": grey fading into the final picture."""
    scale = min(1.0, 64 / max(width, height))
    w, h = max(8, int(width * scale)), max(8, int(height * scale))
    final = Image.open(io.BytesIO(render(text, seed, w, h, "png"))).convert("RGB")
    grey = Image.new("RGB", (w, h), (128, 128, 128))
    out = io.BytesIO()
    Image.blend(grey, final, done).save(out, format="JPEG", quality=60)
    return out.getvalue()
