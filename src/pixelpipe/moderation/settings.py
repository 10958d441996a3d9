"""Moderation settings (``PIXELPIPE_MODERATION_*``), read with ``settings.section(...)``."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from pixelpipe.moderation.openai import DEFAULT_MODEL
from pixelpipe.settings import SettingsSection

OutputAction = Literal["block", "blur", "flag"]
OnError = Literal["open", "closed"]


class KeyPolicy(BaseModel):
    """One API key's own output policy (``PIXELPIPE_MODERATION_KEYS``)."""

    action: OutputAction | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)


class ModerationSettings(SettingsSection):
    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_MODERATION_")

    url: str = Field(
        "",
        description="empty: no moderation provider; memory:// (markers, tests); the base URL of "
        "OpenAI's API or a compatible one, e.g. https://api.openai.com/v1",
    )
    api_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("PIXELPIPE_MODERATION_API_KEY", "OPENAI_API_KEY"),
        description="the moderation API's key (default: OPENAI_API_KEY)",
    )
    model: str = DEFAULT_MODEL
    timeout_s: float = Field(10.0, gt=0, description="read timeout of one moderation call")
    prompts: bool = Field(True, description="moderate prompts before anything is spent")
    outputs: bool = Field(True, description="moderate images before they are delivered")
    on_error: OnError = Field(
        "closed",
        description="moderation provider down or slow: closed = refuse the prompt / hold the "
        "image (retried, then the job fails moderation_unavailable); open = let it through",
    )
    action: OutputAction = Field("block", description="what a flagged image gets: block|blur|flag")
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description='per-category score thresholds, JSON {"sexual": 0.3}; other categories: '
        "the moderator's own flags",
    )
    keys: dict[str, KeyPolicy] = Field(
        default_factory=dict,
        description='per-API-key policy, JSON {"<key id>": {"action": "blur", '
        '"thresholds": {"violence": 0.9}}}',
    )
    quarantine_days: float = Field(
        0.0, ge=0, description="keep blocked images this long for review (0: not kept)"
    )
    blur_radius: float = Field(32.0, gt=0, description="Gaussian blur radius of blurred images")

    @field_validator("thresholds")
    @classmethod
    def _scores(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, s in v.items() if not 0.0 <= s <= 1.0]
        if bad:
            raise ValueError(f"thresholds are scores from 0 to 1 ({', '.join(bad)})")
        return v

    @property
    def enabled(self) -> bool:
        return bool(self.url)
