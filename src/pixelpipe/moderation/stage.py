"""The moderation stage as the pipeline holds it (``Services.moderation``): its settings, the
moderator (None: no provider configured — nothing is moderated) and the log."""

from __future__ import annotations

from dataclasses import dataclass, field

from pixelpipe.errors import ConfigError
from pixelpipe.moderation.base import ModerationLog, Moderator
from pixelpipe.moderation.local import LocalModerator, load_classifier
from pixelpipe.moderation.memory import MemoryModerationLog, MemoryModerator
from pixelpipe.moderation.openai import OpenAIModerator
from pixelpipe.moderation.settings import ModerationSettings


@dataclass
class Moderation:
    settings: ModerationSettings = field(default_factory=ModerationSettings.model_construct)
    moderator: Moderator | None = None
    log: ModerationLog = field(default_factory=MemoryModerationLog)

    @property
    def prompts(self) -> Moderator | None:
        """The moderator prompts go through, or None (an image classifier reads no text)."""
        moderator = self.moderator
        if moderator is None or not self.settings.prompts or not moderator.reads_text:
            return None
        return moderator

    @property
    def outputs(self) -> Moderator | None:
        """The moderator output images go through, or None."""
        return self.moderator if self.settings.outputs else None

    async def aclose(self) -> None:
        if self.moderator is not None:
            await self.moderator.aclose()


def open_moderator(settings: ModerationSettings) -> Moderator | None:
    """``PIXELPIPE_MODERATION_URL``: empty → None; ``memory://`` → :class:`MemoryModerator`;
    an http(s) base URL → OpenAI's moderation API there."""
    url = settings.url.strip()
    if not url:
        return None
    if url.startswith("memory:"):
        return MemoryModerator()
    if url in ("local://opennsfw", "local://"):
        load_classifier()  # at start: a missing extra is a clear error now, not on a job
        return LocalModerator()
    if url.startswith(("https://", "http://")):
        return OpenAIModerator(
            url,
            settings.api_key.get_secret_value(),
            model=settings.model,
            timeout_s=settings.timeout_s,
        )
    raise ConfigError(
        f"PIXELPIPE_MODERATION_URL {url!r} is not one pixelpipe knows: leave it empty (no "
        "moderation), memory:// (tests), local://opennsfw (the nsfw extra: images only), or "
        "the OpenAI API's base URL, https://api.openai.com/v1"
    )
