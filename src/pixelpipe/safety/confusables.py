"""Look-alike letters → the ASCII letter they pass for (a Unicode TR39 confusables skeleton).

The data is Unicode's ``confusables.txt`` as shipped by the ``confusable-homoglyphs`` package
(MIT; the JSON file inside its wheel, read offline). TR39 maps each confusable character to a
prototype; the package stores those pairs both ways. Characters joined by such pairs form one
skeleton class; a non-ASCII character whose class holds an ASCII letter or digit is mapped to it.
ASCII itself is left alone (TR39 would turn ``m`` into ``rn`` and ``1`` into ``l``; the leetspeak
classes of :mod:`.terms` handle digits instead). A class that holds both ``i`` and ``l`` (``I``,
``1``, ``|``, Greek ``Ι``…) maps to ``1``, which the matcher reads as either.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache
from importlib import resources

_DIRECTION_MARKS = "\u200e\u200f"  # the package wraps right-to-left characters in these
# "LATIN LETTER SMALL CAPITAL B", "LATIN SMALL LETTER L WITH STROKE", "… A WITH RETROFLEX HOOK",
# "NEGATIVE SQUARED LATIN CAPITAL LETTER B" (🅱), "REGIONAL INDICATOR SYMBOL LETTER B" (🇧)
_LATIN_NAME = re.compile(
    r"^(?:LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL )?"
    r"|NEGATIVE (?:SQUARED|CIRCLED) LATIN CAPITAL LETTER |REGIONAL INDICATOR SYMBOL LETTER )"
    r"([A-Z])(?: WITH |$)"
)


def _load_pairs() -> dict[str, list[str]]:
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    data: dict[str, list[dict[str, str]]] = json.loads(raw)
    return {
        key: [entry["c"].strip(_DIRECTION_MARKS) for entry in entries]
        for key, entries in data.items()
    }


def _find(parent: dict[str, str], ch: str) -> str:
    while parent.setdefault(ch, ch) != ch:
        parent[ch] = parent[parent[ch]]
        ch = parent[ch]
    return ch


def _classes(pairs: dict[str, list[str]]) -> dict[str, set[str]]:
    parent: dict[str, str] = {}
    for key, others in pairs.items():
        key = key.strip(_DIRECTION_MARKS)
        if len(key) != 1:
            continue
        for other in others:
            if len(other) == 1:
                parent[_find(parent, other)] = _find(parent, key)
    members: dict[str, set[str]] = {}
    for ch in list(parent):
        members.setdefault(_find(parent, ch), set()).add(ch)
    return members


def _ascii_target(members: set[str]) -> str | None:
    ascii_chars = {ch.lower() for ch in members if ch.isascii() and ch.isalnum()}
    if not ascii_chars:
        return None
    if len(ascii_chars) > 1 and ascii_chars <= {"i", "l", "1"}:
        return "1"
    letters = sorted(ch for ch in ascii_chars if ch.isalpha())
    return letters[0] if letters else sorted(ascii_chars)[0]


@cache
def skeleton_map() -> dict[str, str]:
    """Each non-ASCII character that TR39 finds confusable with an ASCII letter or digit → that
    character, lowercased (built once from the package's data)."""
    mapping: dict[str, str] = {}
    for members in _classes(_load_pairs()).values():
        target = _ascii_target(members)
        if target is None:
            continue
        for ch in members:
            if not ch.isascii():
                mapping[ch] = target
    return mapping


def latin_base(ch: str) -> str | None:
    """The plain letter of a Latin letter that TR39 does not list and NFD does not decompose —
    small capitals, letters with a stroke, bar or hook (``ʙ``, ``ł``, ``ø``, ``ƀ``), emoji letters
    (``🅱``, ``🇧``) — read from its Unicode name; None for anything else."""
    found = _LATIN_NAME.match(unicodedata.name(ch, ""))
    return found.group(1).lower() if found else None
