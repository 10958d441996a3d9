"""OpenAIModerator's translation of the API's failures, against the fake moderation server
(answers and errors as the real API gives them) and a port where nothing listens."""

from __future__ import annotations

import socket
import time

import pytest

from pixelpipe.errors import (
    ModerationAuthError,
    ModerationError,
    ModerationRateLimited,
    ModerationUnavailable,
)
from pixelpipe.moderation.openai import OpenAIModerator

from .conftest import Harness


async def test_request_and_answer_have_openais_shape(fake_moderation: Harness) -> None:
    verdict = await fake_moderation.moderator.text("a field [mod:self-harm]")
    assert verdict.model == "omni-moderation-latest"
    assert verdict.categories == ("self-harm",)
    assert fake_moderation.fake is not None
    assert fake_moderation.fake.stats["text"] == 1


async def test_a_5xx_is_unavailable(fake_moderation: Harness) -> None:
    await fake_moderation.control(error_next=1, error_status=503)
    with pytest.raises(ModerationUnavailable, match="answered 503"):
        await fake_moderation.moderator.text("a cat")
    assert not (await fake_moderation.moderator.text("a cat")).flagged  # once only


async def test_a_429_is_rate_limited_and_retryable(fake_moderation: Harness) -> None:
    await fake_moderation.control(rate_limit_next=1)
    with pytest.raises(ModerationRateLimited) as err:
        await fake_moderation.moderator.text("a cat")
    assert err.value.retryable


async def test_a_hanging_api_times_out(fake_moderation: Harness) -> None:
    await fake_moderation.control(hang_next=1, hang_s=5.0)
    started = time.monotonic()
    with pytest.raises(ModerationUnavailable, match="in time"):
        await fake_moderation.moderator.text("a cat")
    assert time.monotonic() - started < 4.0  # the 1 s timeout, not the 5 s hang


async def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(
    fake_moderation: Harness,
) -> None:
    bad = OpenAIModerator(f"{fake_moderation.base}/v1", "sk-wrong-secret-123", timeout_s=1.0)
    try:
        with pytest.raises(ModerationAuthError) as err:
            await bad.text("a cat")
    finally:
        await bad.aclose()
    assert "PIXELPIPE_MODERATION_API_KEY" in err.value.detail
    assert "sk-wrong-secret-123" not in str(err.value.to_problem())


async def test_no_key_is_a_config_error_before_any_call() -> None:
    moderator = OpenAIModerator("http://127.0.0.1:9/v1", "")
    try:
        with pytest.raises(ModerationAuthError, match="needs a key"):
            await moderator.text("a cat")
    finally:
        await moderator.aclose()


async def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moderator = OpenAIModerator(f"http://127.0.0.1:{port}/v1", "sk-x", timeout_s=1.0)
    try:
        with pytest.raises(ModerationUnavailable, match="could not be reached"):
            await moderator.text("a cat")
    finally:
        await moderator.aclose()


async def test_a_bad_request_is_a_moderation_error(fake_moderation: Harness) -> None:
    moderator = OpenAIModerator(
        f"{fake_moderation.base}/v1", "sk-moderation-test", model="no-such-model"
    )
    try:
        with pytest.raises(ModerationError, match="answered 400"):
            await moderator.text("a cat")
    finally:
        await moderator.aclose()
