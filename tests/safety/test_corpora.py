"""The measured claims of docs/safety.md: no evasion of the built-in rules gets through, and the
false positives on ordinary prompts stay at or under 0.5 %. Corpora: tests/safety/corpora.py.

Run with ``-s`` to see the figures printed."""

from __future__ import annotations

import json

from pixelpipe.errors import SafetyRejected
from pixelpipe.safety import check_prompt, load_rules
from tests.safety import corpora

RULES = load_rules()
MAX_FALSE_POSITIVE_RATE = 0.005
# Ordinary prompts the built-in rules refuse, as docs/safety.md lists them: a blocked term's
# inflection used harmlessly. Change the doc with this list.
KNOWN_FALSE_POSITIVES = ["a beheaded statue in ancient ruins"]


def _reason(text: str) -> str | None:
    try:
        check_prompt(text, RULES)
    except SafetyRejected as exc:
        return exc.reason
    return None


def test_the_committed_corpora_are_what_the_generator_writes() -> None:
    assert corpora.EVASIONS.read_text(encoding="utf-8") == corpora.evasion_lines(), (
        "run: .venv/bin/python -m tests.safety.corpora"
    )
    assert corpora.BENIGN.read_text(encoding="utf-8") == corpora.benign_lines()


def test_no_evasion_gets_through() -> None:
    lines = corpora.EVASIONS.read_text(encoding="utf-8").splitlines()
    evasions = [json.loads(line) for line in lines]
    assert len(evasions) >= 300
    assert {e["reason"] for e in evasions} == {"blocked_term", "prompt_injection"}
    through = [e for e in evasions if _reason(e["text"]) != e["reason"]]
    print(f"\nevasions: {len(through)} of {len(evasions)} got through")
    assert through == []


def test_false_positives_on_ordinary_prompts() -> None:
    prompts = corpora.BENIGN.read_text(encoding="utf-8").splitlines()
    assert len(prompts) >= 1000
    refused = [p for p in prompts if _reason(p) is not None]
    rate = len(refused) / len(prompts)
    print(f"\nfalse positives: {len(refused)} of {len(prompts)} ({rate:.2%}): {refused}")
    assert rate <= MAX_FALSE_POSITIVE_RATE
    assert refused == KNOWN_FALSE_POSITIVES


def test_every_technique_is_in_the_corpus_alone_and_mixed() -> None:
    evasions = [json.loads(line) for line in corpora.EVASIONS.read_text().splitlines()]
    alone = {e["techniques"][0] for e in evasions if len(e["techniques"]) == 1}
    mixed = {name for e in evasions if len(e["techniques"]) > 1 for name in e["techniques"]}
    assert alone == set(corpora.TECHNIQUES)
    assert mixed == set(corpora.TECHNIQUES)
