"""AUTOMATIC1111's request fields, checkpoints, samplers, error bodies and ``info`` (see a1111.py).

Validation errors use FastAPI 0.94 / pydantic 1 shapes (A1111 1.10 pins ``fastapi==0.94.0``):
``{"detail": [{"loc": ["body", "steps"], "msg": "value is not a valid integer", "type":
"type_error.integer"}]}``. Everything else that fails goes through A1111's own handler
(``modules/api/api.py`` ``api_middleware.handle_exception``): ``{"error": <exception class>,
"detail": <HTTPException detail or "">, "body": "", "errors": str(exception)}``.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

VERSION = "v1.10.1"
SAMPLERS = (
    "DPM++ 2M",
    "DPM++ SDE",
    "DPM++ 2M SDE",
    "DPM++ 2M SDE Heun",
    "DPM++ 2S a",
    "DPM++ 3M SDE",
    "Euler a",
    "Euler",
    "LMS",
    "Heun",
    "DPM2",
    "DPM2 a",
    "DPM fast",
    "DPM adaptive",
    "Restart",
    "DDIM",
    "DDIM CFG++",
    "PLMS",
    "UniPC",
    "LCM",
)
# "DPM++ 2M Karras" = sampler + scheduler label (sd_samplers.get_sampler_and_scheduler, 1.9+)
SCHEDULER_SUFFIXES = ("Karras", "Exponential", "Polyexponential", "SGM Uniform", "Uniform")
NANS_MESSAGE = (
    "A tensor with all NaNs was produced in Unet. This could be either because there's not "
    "enough precision to represent the picture, or because your video card does not support half "
    'type. Try setting the "Upcast cross attention layer to float32" option in Settings > Stable '
    "Diffusion or using the --no-half commandline argument to fix this. Use --disable-nan-check "
    "commandline argument to disable this check."
)
OOM_MESSAGE = (
    "CUDA out of memory. Tried to allocate 1.11 GiB (GPU 0; 6.00 GiB total capacity; 4.27 GiB "
    "already allocated; 98.34 MiB free; 4.37 GiB reserved in total by PyTorch) If reserved memory "
    "is >> allocated memory try setting max_split_size_mb to avoid fragmentation.  See "
    "documentation for Memory Management and PYTORCH_CUDA_ALLOC_CONF"
)
# field -> (pydantic 1 type, default): the txt2img fields this fake reads
INT_FIELDS = {
    "seed": -1,
    "subseed": -1,
    "steps": 50,
    "width": 512,
    "height": 512,
    "batch_size": 1,
    "n_iter": 1,
}
FLOAT_FIELDS = {"cfg_scale": 7.0, "denoising_strength": 0.75}
STR_FIELDS = {"prompt": "", "negative_prompt": "", "sampler_index": "Euler"}
OPTIONAL_STR_FIELDS = ("sampler_name", "scheduler", "force_task_id", "script_name", "infotext")
BOOL_FIELDS = {"send_images": True, "save_images": False}
# what img2img adds (StableDiffusionImg2ImgProcessingAPI): init_images is a list, mask a string
IMG2IMG_INT_FIELDS = {
    "resize_mode": 0,
    "mask_blur": 4,
    "inpainting_fill": 0,
    "inpainting_mask_invert": 0,
}
IMG2IMG_FLOAT_FIELDS = {"denoising_strength": 0.75}
IMG2IMG_BOOL_FIELDS = {"inpaint_full_res": True, "include_init_images": False}
IMG2IMG_LIST_FIELDS = ("init_images",)
IMG2IMG_STR_FIELDS = ("mask",)


@dataclass(frozen=True)
class Checkpoint:
    """One entry of ``GET /sdapi/v1/sd-models`` (``modules/sd_models.py`` CheckpointInfo)."""

    filename: str  # as found under models/Stable-diffusion

    @property
    def model_name(self) -> str:
        return self.filename.rsplit(".", 1)[0].replace("/", "_")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.filename.encode()).hexdigest()

    @property
    def shorthash(self) -> str:
        return self.sha256[:10]

    @property
    def title(self) -> str:
        return f"{self.filename} [{self.shorthash}]"

    def aliases(self) -> set[str]:
        return {self.title, self.filename, self.model_name, self.shorthash, self.sha256}

    def as_item(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "model_name": self.model_name,
            "hash": self.shorthash,
            "sha256": self.sha256,
            "filename": f"/stable-diffusion-webui/models/Stable-diffusion/{self.filename}",
            "config": None,
        }


def find_checkpoint(checkpoints: list[Checkpoint], name: str) -> Checkpoint | None:
    return next((c for c in checkpoints if name in c.aliases()), None)


def a1111_error(status: int, error: str, errors: str, detail: str = "") -> JSONResponse:
    """A1111's exception handler body (``api_middleware.handle_exception``)."""
    body = {"error": error, "detail": detail, "body": "", "errors": errors}
    return JSONResponse(body, status_code=status)


def http_exception(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """``raise HTTPException(status, detail)`` as A1111 answers it."""
    resp = a1111_error(status, "HTTPException", f"{status}: {detail}", detail)
    resp.headers.update(headers or {})
    return resp


class Invalid(Exception):
    """A request body pydantic 1 refuses: answered 422 ``{"detail": [...]}``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.errors}, status_code=422)


def parse_body(raw: bytes, img2img: bool = False) -> dict[str, Any]:
    """The txt2img body (or img2img's, with its fields), coerced like pydantic 1 does;
    :class:`Invalid` otherwise."""
    body = json_object(raw)
    out: dict[str, Any] = {**INT_FIELDS, **FLOAT_FIELDS, **STR_FIELDS, **BOOL_FIELDS}
    out |= {name: None for name in OPTIONAL_STR_FIELDS} | {"override_settings": {}}
    if img2img:
        out |= IMG2IMG_INT_FIELDS | IMG2IMG_FLOAT_FIELDS | IMG2IMG_BOOL_FIELDS
        out |= {name: None for name in (*IMG2IMG_LIST_FIELDS, *IMG2IMG_STR_FIELDS)}
    errors: list[dict[str, Any]] = []
    for name, value in body.items():
        try:
            out[name] = _coerce(name, value, img2img)
        except ValueError as exc:
            errors.append(_error(name, *exc.args))
    if errors:
        raise Invalid(errors)
    return out


def json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object body as FastAPI 0.94 reads one; :class:`Invalid` otherwise."""
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        ctx = {"msg": exc.msg, "doc": exc.doc, "pos": exc.pos, "lineno": exc.lineno}
        error = {"loc": ["body", exc.pos], "msg": str(exc), "type": "value_error.jsondecode"}
        raise Invalid([error | {"ctx": ctx | {"colno": exc.colno}}]) from None
    if not isinstance(body, dict):  # the whole body is the model: its error sits at ["body"]
        raise Invalid(
            [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]
        )
    return body


def _coerce(name: str, value: Any, img2img: bool = False) -> Any:
    if value is None:
        return None  # every generated field is Optional (models.py field_type_generator)
    if img2img and (coerced := _coerce_img2img(name, value)) is not _NOT_OURS:
        return coerced
    if name in INT_FIELDS:
        return _int(value)
    if name in FLOAT_FIELDS:
        return _float(value)
    if name in STR_FIELDS or name in OPTIONAL_STR_FIELDS:
        if isinstance(value, dict | list):
            raise ValueError("str type expected", "type_error.str")
        return str(value)
    if name in BOOL_FIELDS:
        return _bool(value)
    if name == "override_settings" and not isinstance(value, dict):
        raise ValueError("value is not a valid dict", "type_error.dict")
    return value  # fields this fake does not read are accepted as they are


_NOT_OURS = object()


def _coerce_img2img(name: str, value: Any) -> Any:
    """An img2img field, or ``_NOT_OURS`` for a field txt2img has too."""
    if name in IMG2IMG_INT_FIELDS:
        return _int(value)
    if name in IMG2IMG_BOOL_FIELDS:
        return _bool(value)
    if name in IMG2IMG_LIST_FIELDS:
        if not isinstance(value, list | tuple):
            raise ValueError("value is not a valid list", "type_error.list")
        return list(value)
    if name in IMG2IMG_STR_FIELDS:
        if isinstance(value, dict | list):
            raise ValueError("str type expected", "type_error.str")
        return str(value)
    return _NOT_OURS


def _int(value: Any) -> int:
    """pydantic 1's ``int_validator``: ``int(v)`` (20.7 → 20, "20" → 20, "20.5" refused)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError("value is not a valid integer", "type_error.integer") from None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("value is not a valid float", "type_error.float") from None


def _bool(value: Any) -> bool:
    truthy = {True, "1", "true", "True", "yes", "on"}  # 1 == True: the ints are in already
    falsy = {False, "0", "false", "False", "no", "off"}
    if isinstance(value, bool | int | str) and value in truthy | falsy:
        return value in truthy
    raise ValueError("value could not be parsed to a boolean", "type_error.bool")


def _error(field: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": msg, "type": kind}


def valid_sampler(name: str) -> bool:
    if name in SAMPLERS:
        return True
    return any(name == f"{s} {suffix}" for s in SAMPLERS for suffix in SCHEDULER_SUFFIXES)


def resolve_seed(seed: int | None) -> int:
    """``-1`` (or none) means a random seed, as A1111's ``get_fixed_seed`` does."""
    if seed is None or seed == -1:
        return random.randrange(4294967294)
    return seed


def infotext(body: dict[str, Any], ckpt: Checkpoint, seed: int, sampler: str) -> str:
    """The ``parameters`` text A1111 writes into each PNG and ``info.infotexts``."""
    lines = [str(body["prompt"])]
    if body["negative_prompt"]:
        lines.append(f"Negative prompt: {body['negative_prompt']}")
    params = (
        f"Steps: {body['steps']}, Sampler: {sampler}, Schedule type: Automatic, "
        f"CFG scale: {body['cfg_scale']:g}, Seed: {seed}, Size: {body['width']}x{body['height']}, "
        f"Model hash: {ckpt.shorthash}, Model: {ckpt.model_name}, Version: {VERSION}"
    )
    return "\n".join([*lines, params])


def info_json(
    body: dict[str, Any], ckpt: Checkpoint, seeds: list[int], sampler: str, timestamp: str
) -> str:
    """``Processed.js()``: the ``info`` string of a txt2img answer (``modules/processing.py``)."""
    texts = [infotext(body, ckpt, s, sampler) for s in seeds]
    prompts = [body["prompt"]] * len(seeds)
    obj = {
        "prompt": body["prompt"],
        "all_prompts": prompts,
        "negative_prompt": body["negative_prompt"],
        "all_negative_prompts": [body["negative_prompt"]] * len(seeds),
        "seed": seeds[0] if seeds else -1,
        "all_seeds": seeds,
        "subseed": -1,
        "all_subseeds": [-1] * len(seeds),
        "subseed_strength": 0,
        "width": body["width"],
        "height": body["height"],
        "sampler_name": sampler,
        "cfg_scale": body["cfg_scale"],
        "steps": body["steps"],
        "batch_size": body["batch_size"],
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": ckpt.model_name,
        "sd_model_hash": ckpt.shorthash,
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": body.get("denoising_strength") if "init_images" in body else None,
        "extra_generation_params": {},
        "index_of_first_image": 0,
        "infotexts": texts,
        "styles": [],
        "job_timestamp": timestamp,
        "clip_skip": 1,
        "is_using_inpainting_conditioning": False,
        "version": VERSION,
    }
    return json.dumps(obj)
