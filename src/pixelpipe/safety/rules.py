"""Load the safety rules and check prompts against them.

Reason codes (stable, documented): ``blocked_term``, ``prompt_injection``, ``too_long``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pixelpipe.errors import ConfigError, SafetyRejected


@dataclass(frozen=True, slots=True)
class BlockedClass:
    label: str
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class SafetyRules:
    version: str
    max_chars: int
    blocked: tuple[BlockedClass, ...]
    injection_markers: tuple[str, ...]


def _compile(terms: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(r"\s+".join(map(re.escape, t.lower().split())) for t in terms)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def load_rules(path: Path | None = None) -> SafetyRules:
    try:
        text = (
            path.read_text()
            if path
            else resources.files("pixelpipe.safety").joinpath("rules.toml").read_text()
        )
        raw = tomllib.loads(text)
        blocked = tuple(BlockedClass(b["class"], _compile(b["terms"])) for b in raw["blocked"])
        return SafetyRules(
            version=str(raw.get("version", "unversioned")),
            max_chars=int(raw.get("max_chars", 1000)),
            blocked=blocked,
            injection_markers=tuple(m.lower() for m in raw.get("injection_markers", ())),
        )
    except (OSError, KeyError, TypeError, ValueError, tomllib.TOMLDecodeError, re.error) as exc:
        where = path or "built-in rules"
        raise ConfigError(
            f"safety rules in {where} could not be loaded ({exc}); fix the file or unset "
            "PIXELPIPE_SAFETY_RULES_PATH"
        ) from exc


def check_prompt(text: str, rules: SafetyRules, *, field: str = "prompt") -> None:
    """Raise SafetyRejected with a stable reason code when a rule matches ``text``."""
    if len(text) > rules.max_chars:
        raise SafetyRejected(
            f"the {field} is longer than {rules.max_chars} characters; shorten it",
            reason="too_long",
            field=field,
        )
    lowered = text.lower()
    for marker in rules.injection_markers:
        if marker in lowered:
            raise SafetyRejected(
                f"the {field} contains an instruction aimed at a model ({marker!r}), not a "
                "description of a picture; describe the image instead",
                reason="prompt_injection",
                field=field,
            )
    for cls in rules.blocked:
        if cls.pattern.search(text):
            raise SafetyRejected(
                f"the {field} asks for {cls.label}, which this server does not generate",
                reason="blocked_term",
                category=cls.label,
                field=field,
            )
