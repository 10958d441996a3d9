"""The OpenAI fake's shared rules: which models take what, the error envelope, field checks."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse


@dataclass(frozen=True)
class ModelRules:
    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    max_n: int
    max_prompt: int
    gpt: bool


GPT = ModelRules(
    ("1024x1024", "1536x1024", "1024x1536", "auto"),
    ("low", "medium", "high", "auto"),
    10,
    32000,
    True,
)
MODELS = {
    "dall-e-2": ModelRules(("256x256", "512x512", "1024x1024"), ("standard",), 10, 1000, False),
    "dall-e-3": ModelRules(
        ("1024x1024", "1792x1024", "1024x1792"), ("standard", "hd"), 1, 4000, False
    ),
    "gpt-image-1": GPT,
    "gpt-image-1-mini": GPT,
    "gpt-image-1.5": GPT,
}


class InvalidRequest(Exception):
    def __init__(self, message: str, param: str | None, code: str) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def error_response(
    status: int, message: str, kind: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=request_headers())


def request_headers() -> dict[str, str]:
    return {
        "x-request-id": "req_" + secrets.token_hex(16),
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
    }


def check_prompt(prompt: Any, rules: ModelRules) -> None:
    if not isinstance(prompt, str) or not prompt:
        raise InvalidRequest(
            "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
        )
    if len(prompt) > rules.max_prompt:
        message = (
            f"Invalid 'prompt': string too long. Expected a maximum length of {rules.max_prompt}."
        )
        raise InvalidRequest(message, "prompt", "string_above_max_length")


def check_choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    if name in body and body[name] not in allowed:
        message = f"Invalid value: '{body[name]}'. Supported values are: {', '.join(allowed)}."
        raise InvalidRequest(message, name, "invalid_value")


def dims(size: str) -> tuple[int, int]:
    if size == "auto":
        return 1024, 1024
    w, _, h = size.partition("x")
    return int(w), int(h)


_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}


def usage(
    prompt: str, quality: str, width: int, height: int, n: int, image_tokens: int = 0
) -> dict[str, Any]:
    """GPT image usage: text tokens ~ words, output tokens by quality and shape (272/1056/4160 for a
    square), ``image_tokens`` for an edit's input images."""
    square = width == height
    output = _OUTPUT_TOKENS.get(quality, 1056) * (1 if square else 3) // (1 if square else 2) * n
    text = max(1, len(prompt.split()))
    return {
        "input_tokens": text + image_tokens,
        "input_tokens_details": {"text_tokens": text, "image_tokens": image_tokens},
        "output_tokens": output,
        "total_tokens": text + image_tokens + output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
    }
