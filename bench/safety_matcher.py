"""How long the safety pre-flight takes per prompt: µs per prompt over the benign corpus (the
common case), the evasion corpus, and long adversarial prompts (runs of one character or of
letter-and-separator pairs, at the rules' max_chars), each the median of several passes.

    .venv/bin/python bench/safety_matcher.py
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.safety import corpora

from pixelpipe.errors import SafetyRejected
from pixelpipe.safety import SafetyRules, check_prompt, load_rules

PASSES = 7


def _check(text: str, rules: SafetyRules) -> None:
    try:
        check_prompt(text, rules)
    except SafetyRejected:
        pass


def _us_per_prompt(prompts: list[str], rules: SafetyRules) -> float:
    def one_pass() -> float:
        start = time.perf_counter()
        for prompt in prompts:
            _check(prompt, rules)
        return (time.perf_counter() - start) / len(prompts) * 1e6

    return statistics.median(one_pass() for _ in range(PASSES))


def _adversarial(max_chars: int) -> list[str]:
    units = ["1", "|", "e", "e.", "s.", "e ", "<|", "i.", "#", "🔪", "\u200b", "b.e.h.", "nud"]
    return [(unit * max_chars)[:max_chars] for unit in units]


def main() -> None:
    started = time.perf_counter()
    rules = load_rules()
    loaded_ms = (time.perf_counter() - started) * 1000
    benign = corpora.BENIGN.read_text(encoding="utf-8").splitlines()
    lines = corpora.EVASIONS.read_text(encoding="utf-8").splitlines()
    evasions = [json.loads(line)["text"] for line in lines]
    adversarial = _adversarial(rules.max_chars)
    rows = [
        (f"benign corpus ({len(benign)} prompts)", benign),
        (f"evasion corpus ({len(evasions)} prompts)", evasions),
        (f"adversarial ({len(adversarial)} × {rules.max_chars} chars)", adversarial),
    ]
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"load_rules (compile the built-in rules): {loaded_ms:.1f} ms")
    for name, prompts in rows:
        print(f"{name}: {_us_per_prompt(prompts, rules):.1f} µs per prompt")
    worst = max(_us_per_prompt([p], rules) for p in adversarial)
    print(f"slowest adversarial prompt: {worst:.1f} µs")


if __name__ == "__main__":
    main()
