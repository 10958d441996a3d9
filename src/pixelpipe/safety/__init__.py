"""Stage 2 — safety pre-flight: data-driven rules, run before any provider call or spend."""

from pixelpipe.safety.rules import SafetyRules, check_prompt, load_rules

__all__ = ["SafetyRules", "check_prompt", "load_rules"]
