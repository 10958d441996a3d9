"""What a verdict means for one request: a prompt refused or not; an image blocked, blurred or
flagged — the settings' action and thresholds, or the API key's own (``PIXELPIPE_MODERATION_KEYS``).
Pure functions of the settings and the verdict."""

from __future__ import annotations

from dataclasses import dataclass

from pixelpipe.moderation.base import Verdict
from pixelpipe.moderation.settings import ModerationSettings, OutputAction


@dataclass(frozen=True, slots=True)
class KeyRules:
    action: OutputAction
    thresholds: dict[str, float]


def rules_for(settings: ModerationSettings, api_key_id: str | None) -> KeyRules:
    """The settings' action and thresholds, overridden by the key's own where it has them."""
    own = settings.keys.get(api_key_id or "")
    if own is None:
        return KeyRules(settings.action, dict(settings.thresholds))
    return KeyRules(own.action or settings.action, {**settings.thresholds, **own.thresholds})


def flagged(verdict: Verdict, rules: KeyRules) -> tuple[str, ...]:
    """The categories that make ``verdict`` a hit under ``rules`` (empty: clean)."""
    return verdict.flagged_under(rules.thresholds)
