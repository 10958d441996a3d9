"""OpenAI's moderation API (``POST /v1/moderations``, ``omni-moderation-latest``, free).

One input per call: ``{"type": "text", "text": …}`` or ``{"type": "image_url", "image_url":
{"url": "data:<type>;base64,…"}}``; the answer's ``results[0]`` carries ``flagged``,
``categories``, ``category_scores`` and ``category_applied_input_types``. Every call has a
timeout; answers are translated here: 401/403 → ModerationAuthError, 429 → ModerationRateLimited,
5xx, a timeout or no connection → ModerationUnavailable, anything else unusable → ModerationError.
The key is sent as a bearer token and never appears in an error or a log line.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from pixelpipe.errors import (
    ModerationAuthError,
    ModerationError,
    ModerationRateLimited,
    ModerationUnavailable,
)
from pixelpipe.moderation.base import Verdict

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "omni-moderation-latest"


class OpenAIModerator:
    name = "openai"
    reads_text = True

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        *,
        model: str = DEFAULT_MODEL,
        timeout_s: float = 10.0,
        key_variable: str = "PIXELPIPE_MODERATION_API_KEY",
    ) -> None:
        self.model = model
        self._url = base_url.rstrip("/") + "/moderations"
        self._key = api_key
        self._key_variable = key_variable
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        self._http = httpx.AsyncClient(timeout=timeout, trust_env=False)

    async def text(self, text: str) -> Verdict:
        return await self._moderate({"type": "text", "text": text})

    async def image(self, data: bytes, content_type: str) -> Verdict:
        uri = f"data:{content_type};base64,{base64.b64encode(data).decode()}"
        return await self._moderate({"type": "image_url", "image_url": {"url": uri}})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _moderate(self, item: dict[str, Any]) -> Verdict:
        if not self._key:
            raise ModerationAuthError(
                f"the moderation API needs a key: set {self._key_variable}", provider="openai"
            )
        body = {"model": self.model, "input": [item]}
        headers = {"Authorization": f"Bearer {self._key}"}
        try:
            answer = await self._http.post(self._url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise ModerationUnavailable("the moderation API did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ModerationUnavailable(
                f"the moderation API could not be reached ({type(exc).__name__})"
            ) from None
        if answer.status_code != 200:
            raise _status_error(answer, self._key_variable)
        return _verdict(answer)


def _status_error(answer: httpx.Response, key_variable: str) -> ModerationError:
    status = answer.status_code
    message = _message(answer)
    detail = f"the moderation API answered {status}: {message}"
    if status in (401, 403):
        return ModerationAuthError(f"{detail}; check {key_variable}", provider="openai")
    if status == 429:
        retry = answer.headers.get("retry-after")
        return ModerationRateLimited(detail, retry_after=_seconds(retry), provider="openai")
    if status >= 500:
        return ModerationUnavailable(detail, provider="openai")
    return ModerationError(detail, provider="openai")


def _message(answer: httpx.Response) -> str:
    try:
        error = answer.json().get("error") or {}
        return str(error.get("message") or error.get("code") or "no message")[:300]
    except (ValueError, AttributeError):
        return "no JSON error body"


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _verdict(answer: httpx.Response) -> Verdict:
    try:
        payload = answer.json()
        result = payload["results"][0]
        flags = result["categories"]
        scores = {str(k): float(v) for k, v in result["category_scores"].items()}
        model = str(payload.get("model") or "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise ModerationUnavailable("the moderation API answered without results") from None
    flagged = tuple(sorted(str(k) for k, v in flags.items() if v))
    return Verdict(bool(result.get("flagged")) or bool(flagged), scores, flagged, model)
