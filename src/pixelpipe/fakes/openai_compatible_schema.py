"""Request bodies and error shapes of the OpenAI-compatible image servers (openai_compatible.py).

Both servers are FastAPI apps validating with pydantic 2, so these models are served by FastAPI
here too and their 422 bodies are FastAPI's own. SGLang diffusion keeps FastAPI's default error
handlers: ``{"detail": …}``. ``vllm serve --omni`` is built by vLLM's ``build_app``, whose
handlers turn every ``HTTPException`` into ``{"error": {"message", "type": <HTTP phrase>,
"param": null, "code": <status>}}`` and a validation error into the same envelope with status
**400** (``vllm/entrypoints/openai/api_server.py`` ``http_exception_handler`` /
``validation_exception_handler``).
"""

from __future__ import annotations

import time
from enum import Enum
from http import HTTPStatus
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Flavour = Literal["sglang", "vllm-omni"]


class SGLangImageRequest(BaseModel):
    """sglang ``multimodal_gen/runtime/entrypoints/openai/protocol.py`` ImageGenerationsRequest."""

    model_config = ConfigDict(extra="allow")

    prompt: str
    model: str | None = None
    n: int | None = 1
    quality: str | None = "auto"
    response_format: str | None = "url"
    size: str | None = "1024x1024"
    background: str | None = "auto"
    output_format: str | None = None
    user: str | None = None
    width: int | None = None
    height: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    true_cfg_scale: float | None = None
    seed: int | list[int] | None = None
    negative_prompt: str | None = None


class ResponseFormat(str, Enum):  # noqa: UP042 - vllm-omni's own; its error text shows the member
    B64_JSON = "b64_json"
    URL = "url"
    FILE = "file"


class VllmOmniImageRequest(BaseModel):
    """vllm-omni ``vllm_omni/entrypoints/openai/protocol/images.py`` ImageGenerationRequest."""

    prompt: str
    model: str | None = None
    n: int = Field(default=1, ge=1, le=10)
    size: str | None = None
    response_format: ResponseFormat = ResponseFormat.B64_JSON
    user: str | None = None
    negative_prompt: str | None = None
    num_inference_steps: int | None = Field(default=None, ge=1, le=200)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=20.0)
    true_cfg_scale: float | None = Field(default=None, ge=0.0, le=20.0)
    seed: int | None = None
    output_format: str | None = None

    @field_validator("size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and "x" not in v:
            raise ValueError("size must be in format 'WIDTHxHEIGHT' (e.g., '1024x1024')")
        return v

    @field_validator("response_format")
    @classmethod
    def _format(cls, v: ResponseFormat) -> ResponseFormat:
        if v not in (ResponseFormat.B64_JSON, ResponseFormat.FILE):
            raise ValueError(f"Only 'b64_json' or 'file' response format is supported, got: {v}")
        return v


def vllm_size_error(size: str) -> str | None:
    """vllm-omni ``parse_size``'s ``ValueError`` message for a bad ``size`` (None when fine)."""
    parts = size.split("x")
    example = "Expected format: 'WIDTHxHEIGHT' (e.g., '1024x1024')."
    if len(parts) != 2:
        return f"Invalid size format: '{size}'. {example} Did you mean to use 'x' as separator?"
    try:
        width, height = int(parts[0]), int(parts[1])
    except ValueError:
        return f"Invalid size format: '{size}'. Width and height must be integers."
    if width <= 0 or height <= 0:
        return f"Invalid size: {width}x{height}. Width and height must be positive integers."
    return None


def http_error(flavour: Flavour, status: int, message: str) -> JSONResponse:
    """``raise HTTPException(status, message)`` as each server answers it."""
    if flavour == "sglang":
        return JSONResponse({"detail": message}, status_code=status)
    return JSONResponse(vllm_envelope(status, message), status_code=status)


def vllm_envelope(status: int, message: str) -> dict[str, Any]:
    phrase = HTTPStatus(status).phrase
    return {"error": {"message": message, "type": phrase, "param": None, "code": status}}


async def vllm_validation_error(request: Request, exc: Exception) -> Response:
    """vLLM's ``validation_exception_handler``: 400 and the envelope, errors as text."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    exc_str, errors_str = str(exc), str(errors)
    message = f"{exc_str} {errors_str}" if errors and errors_str != exc_str else exc_str
    return JSONResponse(vllm_envelope(400, message), status_code=400)


def model_list(flavour: Flavour, model: str, created: int) -> dict[str, Any]:
    """``GET /v1/models``: the one model this process serves."""
    if flavour == "sglang":  # common_api.py DiffusionModelCard
        card: dict[str, Any] = {
            "id": model,
            "object": "model",
            "created": created,
            "owned_by": "sglang",
            "root": model,
            "parent": None,
            "max_model_len": None,
            "num_gpus": 1,
            "task_type": "T2I",
            "dit_precision": "bf16",
            "vae_precision": "fp32",
        }
    else:  # vllm ModelCard
        card = {
            "id": model,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": model,
            "parent": None,
            "max_model_len": None,
            "permission": [_vllm_permission(created)],
        }
    return {"object": "list", "data": [card]}


def _vllm_permission(created: int) -> dict[str, Any]:
    return {
        "id": f"modelperm-{created:x}",
        "object": "model_permission",
        "created": created,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": True,
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }


def now() -> int:
    return int(time.time())
