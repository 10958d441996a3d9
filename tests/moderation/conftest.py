"""Moderators under test: the in-memory one, and OpenAI's client against the fake moderation
server (served on a real socket in this event loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from pixelpipe.fakes.openai_moderation import OpenAIModerationFake
from pixelpipe.fakes.server import serve_app
from pixelpipe.moderation.base import Moderator
from pixelpipe.moderation.memory import MemoryModerator
from pixelpipe.moderation.openai import OpenAIModerator
from tests.integrations.conftest import fakes  # noqa: F401 - the fake providers fixture


@dataclass
class Harness:
    moderator: Moderator
    fake: OpenAIModerationFake | None = None
    base: str = ""

    async def control(self, **changes: object) -> None:
        assert self.fake is not None
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{self.base}/_control", json=changes)
            answer.raise_for_status()


@pytest.fixture
async def fake_moderation() -> AsyncIterator[Harness]:
    fake = OpenAIModerationFake(api_key="sk-moderation-test")
    async with serve_app(fake.app) as base:
        moderator = OpenAIModerator(f"{base}/v1", "sk-moderation-test", timeout_s=1.0)
        try:
            yield Harness(moderator, fake, base)
        finally:
            await moderator.aclose()


@pytest.fixture(params=["memory", "openai"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        yield Harness(MemoryModerator())
        return
    fake = OpenAIModerationFake(api_key="sk-moderation-test")
    async with serve_app(fake.app) as base:
        moderator = OpenAIModerator(f"{base}/v1", "sk-moderation-test", timeout_s=1.0)
        try:
            yield Harness(moderator, fake, base)
        finally:
            await moderator.aclose()
