"""Load the safety rules and check prompts against them.

Reason codes (stable, documented): ``blocked_term``, ``prompt_injection``, ``too_long``.
How terms are matched (Unicode tricks, separators, leetspeak, inflections): :mod:`.terms` and
:mod:`.normalize`; docs/safety.md for operators.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pixelpipe.errors import ConfigError, SafetyRejected
from pixelpipe.safety.matcher import Matcher, build_matcher


@dataclass(frozen=True, slots=True)
class SafetyRules:
    version: str
    max_chars: int
    matcher: Matcher


def _strings(raw: dict[str, Any], key: str, *, required: bool = False) -> list[str]:
    values = raw[key] if required else raw.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TypeError(f"{key!r} must be a list of strings")
    return values


def _parse(raw: dict[str, Any]) -> SafetyRules:
    blocked = [(str(b["class"]), _strings(b, "terms", required=True)) for b in raw["blocked"]]
    return SafetyRules(
        version=str(raw.get("version", "unversioned")),
        max_chars=int(raw.get("max_chars", 1000)),
        matcher=build_matcher(blocked, _strings(raw, "allow"), _strings(raw, "injection_markers")),
    )


def load_rules(path: Path | None = None) -> SafetyRules:
    try:
        text = (
            path.read_text()
            if path
            else resources.files("pixelpipe.safety").joinpath("rules.toml").read_text()
        )
        return _parse(tomllib.loads(text))
    except (OSError, KeyError, TypeError, ValueError, tomllib.TOMLDecodeError, re.error) as exc:
        where = path or "built-in rules"
        raise ConfigError(
            f"safety rules in {where} could not be loaded ({exc}); fix the file or unset "
            "PIXELPIPE_SAFETY_RULES_PATH"
        ) from exc


def check_prompt(text: str, rules: SafetyRules, *, field: str = "prompt") -> None:
    """Raise SafetyRejected with a stable reason code when a rule matches ``text``. The text is
    folded for matching only (:mod:`.normalize`); nothing is rewritten."""
    if len(text) > rules.max_chars:
        raise SafetyRejected(
            f"the {field} is longer than {rules.max_chars} characters; shorten it",
            reason="too_long",
            field=field,
        )
    marker, label = rules.matcher.verdict(text)
    if marker is not None:
        raise SafetyRejected(
            f"the {field} contains an instruction aimed at a model ({marker.lower()!r}), not a "
            "description of a picture; describe the image instead",
            reason="prompt_injection",
            field=field,
        )
    if label is not None:
        raise SafetyRejected(
            f"the {field} asks for {label}, which this server does not generate",
            reason="blocked_term",
            category=label,
            field=field,
        )
