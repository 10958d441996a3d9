"""The node classes the fake ComfyUI knows (``GET /object_info``).

Enough classes for an SDXL text-to-image graph (CheckpointLoaderSimple, CLIPTextEncode,
EmptyLatentImage, KSampler, VAEDecode, SaveImage), a FLUX one (UNETLoader, DualCLIPLoader,
VAELoader, FluxGuidance, EmptySD3LatentImage, RandomNoise, KSamplerSelect, BasicScheduler,
BasicGuider, SamplerCustomAdvanced), LoadImage / PreviewImage, and for image-to-image and
inpainting LoadImageMask, VAEEncode, VAEEncodeForInpaint and SetLatentNoiseMask. Each input is
declared as in ``INPUT_TYPES``: ``["INT", {"default", "min", "max"}]``, a combo ``[[choices],
{}]`` or a link type ``["MODEL"]``; the ``/object_info`` entry has ComfyUI's ``node_info`` shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CHECKPOINTS = ["sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors"]
UNETS = ["flux1-dev.safetensors", "flux1-schnell.safetensors"]
CLIPS = ["t5xxl_fp16.safetensors", "clip_l.safetensors"]
VAES = ["ae.safetensors", "sdxl_vae.safetensors"]
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "ddim", "uni_pc"]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "beta"]
MAX_RESOLUTION = 16384
SEED_MAX = 0xFFFFFFFFFFFFFFFF


def _int(default: int, lo: int, hi: int, step: int = 1) -> list[Any]:
    return ["INT", {"default": default, "min": lo, "max": hi, "step": step}]


def _float(default: float, lo: float, hi: float) -> list[Any]:
    return ["FLOAT", {"default": default, "min": lo, "max": hi, "step": 0.1}]


def _text() -> list[Any]:
    return ["STRING", {"multiline": True, "dynamicPrompts": True}]


def _size() -> list[Any]:
    return _int(1024, 16, MAX_RESOLUTION, 8)


@dataclass(frozen=True)
class NodeClass:
    """One node class: its inputs (``required``/``optional``), outputs and whether it is an
    output node; ``sampler`` classes run steps (progress and previews)."""

    name: str
    required: dict[str, list[Any]]
    outputs: tuple[str, ...]
    category: str
    output_node: bool = False
    sampler: bool = False
    loads_file: bool = False  # its "image" names an uploaded file (VALIDATE_INPUTS checks it)
    optional: dict[str, list[Any]] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """The ``/object_info`` entry, shaped as ComfyUI's ``node_info``."""
        inputs: dict[str, Any] = {"required": self.required}
        if self.optional:
            inputs["optional"] = self.optional
        return {
            "input": inputs,
            "input_order": {k: list(v) for k, v in inputs.items()},
            "output": list(self.outputs),
            "output_is_list": [False] * len(self.outputs),
            "output_name": list(self.outputs),
            "name": self.name,
            "display_name": self.name,
            "description": "",
            "python_module": "nodes",
            "category": self.category,
            "output_node": self.output_node,
        }


def _classes() -> dict[str, NodeClass]:
    classes = [
        NodeClass(
            "CheckpointLoaderSimple",
            {"ckpt_name": [CHECKPOINTS, {}]},
            ("MODEL", "CLIP", "VAE"),
            "loaders",
        ),
        NodeClass(
            "CLIPTextEncode", {"text": _text(), "clip": ["CLIP"]}, ("CONDITIONING",), "conditioning"
        ),
        NodeClass(
            "EmptyLatentImage",
            {"width": _size(), "height": _size(), "batch_size": _int(1, 1, 4096)},
            ("LATENT",),
            "latent",
        ),
        NodeClass(
            "KSampler",
            {
                "model": ["MODEL"],
                "seed": _int(0, 0, SEED_MAX),
                "steps": _int(20, 1, 10000),
                "cfg": _float(8.0, 0.0, 100.0),
                "sampler_name": [SAMPLERS, {}],
                "scheduler": [SCHEDULERS, {}],
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT"],
                "denoise": _float(1.0, 0.0, 1.0),
            },
            ("LATENT",),
            "sampling",
            sampler=True,
        ),
        NodeClass("VAEDecode", {"samples": ["LATENT"], "vae": ["VAE"]}, ("IMAGE",), "latent"),
        NodeClass(
            "SaveImage",
            {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
            (),
            "image",
            output_node=True,
        ),
        NodeClass("PreviewImage", {"images": ["IMAGE"]}, (), "image", output_node=True),
        NodeClass(
            "LoadImage",
            {"image": ["STRING", {"image_upload": True}]},
            ("IMAGE", "MASK"),
            "image",
            loads_file=True,
        ),
        NodeClass(
            "LoadImageMask",
            {
                "image": ["STRING", {"image_upload": True}],
                "channel": [["alpha", "red", "green", "blue"], {}],
            },
            ("MASK",),
            "mask",
            loads_file=True,
        ),
        NodeClass("VAEEncode", {"pixels": ["IMAGE"], "vae": ["VAE"]}, ("LATENT",), "latent"),
        NodeClass(
            "VAEEncodeForInpaint",
            {
                "pixels": ["IMAGE"],
                "vae": ["VAE"],
                "mask": ["MASK"],
                "grow_mask_by": _int(6, 0, 64),
            },
            ("LATENT",),
            "latent/inpaint",
        ),
        NodeClass(
            "SetLatentNoiseMask",
            {"samples": ["LATENT"], "mask": ["MASK"]},
            ("LATENT",),
            "latent/inpaint",
        ),
        NodeClass(
            "UNETLoader",
            {"unet_name": [UNETS, {}], "weight_dtype": [["default", "fp8_e4m3fn", "fp8_e5m2"], {}]},
            ("MODEL",),
            "advanced/loaders",
        ),
        NodeClass(
            "DualCLIPLoader",
            {
                "clip_name1": [CLIPS, {}],
                "clip_name2": [CLIPS, {}],
                "type": [["sdxl", "sd3", "flux", "hunyuan_video"], {}],
            },
            ("CLIP",),
            "advanced/loaders",
        ),
        NodeClass("VAELoader", {"vae_name": [VAES, {}]}, ("VAE",), "loaders"),
        NodeClass(
            "FluxGuidance",
            {"conditioning": ["CONDITIONING"], "guidance": _float(3.5, 0.0, 100.0)},
            ("CONDITIONING",),
            "advanced/conditioning/flux",
        ),
        NodeClass(
            "EmptySD3LatentImage",
            {"width": _size(), "height": _size(), "batch_size": _int(1, 1, 4096)},
            ("LATENT",),
            "latent/sd3",
        ),
        NodeClass(
            "RandomNoise",
            {"noise_seed": _int(0, 0, SEED_MAX)},
            ("NOISE",),
            "sampling/custom_sampling/noise",
        ),
        NodeClass(
            "KSamplerSelect",
            {"sampler_name": [SAMPLERS, {}]},
            ("SAMPLER",),
            "sampling/custom_sampling/samplers",
        ),
        NodeClass(
            "BasicScheduler",
            {
                "model": ["MODEL"],
                "scheduler": [SCHEDULERS, {}],
                "steps": _int(20, 1, 10000),
                "denoise": _float(1.0, 0.0, 1.0),
            },
            ("SIGMAS",),
            "sampling/custom_sampling/schedulers",
        ),
        NodeClass(
            "BasicGuider",
            {"model": ["MODEL"], "conditioning": ["CONDITIONING"]},
            ("GUIDER",),
            "sampling/custom_sampling/guiders",
        ),
        NodeClass(
            "SamplerCustomAdvanced",
            {
                "noise": ["NOISE"],
                "guider": ["GUIDER"],
                "sampler": ["SAMPLER"],
                "sigmas": ["SIGMAS"],
                "latent_image": ["LATENT"],
            },
            ("LATENT", "LATENT"),
            "sampling/custom_sampling",
            sampler=True,
        ),
    ]
    return {c.name: c for c in classes}


NODE_CLASSES = _classes()


def object_info(classes: dict[str, NodeClass] | None = None) -> dict[str, Any]:
    return {name: c.info() for name, c in (classes or NODE_CLASSES).items()}
