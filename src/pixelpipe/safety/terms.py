"""Blocked terms, allow-list entries and injection markers → regular expressions over folded text
(:func:`pixelpipe.safety.normalize.fold`).

A blocked term matches, on word boundaries:

- each letter as itself or a leetspeak stand-in (:mod:`.leet`), repeated any number of times;
- with separators (``.``, ``-``, ``_``, ``*``, emoji…, not spaces) between its letters;
- with any separators, spaces included, or none where the term itself has a space
  (``revenge porn``, ``revenge_porn``, ``revengeporn``);
- or spelled out one letter at a time (``b e h e a d i n g``, ``b. e. h.``);
- with each word in any of its inflections (:mod:`.inflect`).

A space at any other place inside a word is not matched: ``be heading`` is ordinary English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pixelpipe.safety.inflect import word_forms
from pixelpipe.safety.leet import STAND_IN_SYMBOLS, STAND_INS
from pixelpipe.safety.normalize import OTHER_LETTER

_WORD_CHARS = f"a-z0-9{OTHER_LETTER}"
_NOT_SEPARATOR = re.escape(_WORD_CHARS.replace("a-z0-9", "") + STAND_IN_SYMBOLS)
# between the letters of a word: anything but a letter, a digit, a stand-in or a space
_IN_WORD = f"[^a-z0-9\\s{_NOT_SEPARATOR}]*"
# between letters spelled out one at a time, and where a term has a space
_SPELLED = f"[^a-z0-9{_NOT_SEPARATOR}]+"
_GAP = f"[^a-z0-9{_NOT_SEPARATOR}]*"
_START = f"(?<![{_WORD_CHARS}])"
_END = f"(?![{_WORD_CHARS}])"


@dataclass
class _Trie:
    children: dict[str, _Trie] = field(default_factory=dict)
    end: bool = False

    def add(self, word: str) -> None:
        node = self
        for ch in word:
            node = node.children.setdefault(ch, _Trie())
        node.end = True


def letter_class(ch: str) -> str:
    """``ch`` or any of its stand-ins, as a regular-expression character class."""
    stand_ins = STAND_INS.get(ch, "")
    return f"[{re.escape(ch + stand_ins)}]" if stand_ins else re.escape(ch)


def _emit(node: _Trie, between: str, repeat: str) -> str:
    alternatives = []
    for ch, child in sorted(node.children.items()):
        rest = ""
        if child.children:
            rest = f"(?:{between}{_emit(child, between, repeat)})" + ("?" if child.end else "")
        alternatives.append(letter_class(ch) + repeat + rest)
    return alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"


def _words_pattern(words: list[frozenset[str]], between: str, repeat: str, gap: str) -> str:
    parts = []
    for forms in words:
        trie = _Trie()
        for form in forms:
            trie.add(form)
        parts.append(_emit(trie, between, repeat))
    return gap.join(parts)


def term_words(folded_term: str) -> list[str]:
    """The words of a folded term: runs of letters and digits (any other character splits)."""
    return re.findall(r"[a-z0-9]+", folded_term)


def blocked_pattern(folded_terms: Iterable[str]) -> str:
    """One pattern for a class's terms: written with in-word separators, or spelled out."""
    alternatives = []
    for term in folded_terms:
        words = [word_forms(word) for word in term_words(term)]
        if not words:
            continue
        alternatives.append(_words_pattern(words, _IN_WORD, "+", _GAP))
        alternatives.append(_words_pattern(words, _SPELLED, "", _GAP))
    return f"{_START}(?:{'|'.join(alternatives)}){_END}"


def allowed_pattern(folded_entries: Iterable[str]) -> str:
    """Allow-list entries: their words and inflections exactly, spaces between words, on word
    boundaries (no stand-ins, no separators: an allowed phrase is an ordinary one)."""
    alternatives = []
    for entry in folded_entries:
        words = [word_forms(word) for word in term_words(entry)]
        if words:
            tries = ["(?:" + "|".join(map(re.escape, sorted(forms))) + ")" for forms in words]
            alternatives.append(r"\s+".join(tries))
    return f"{_START}(?:{'|'.join(alternatives)}){_END}" if alternatives else r"(?!)"


def marker_pattern(folded_marker: str) -> str:
    """An injection marker, anywhere (a substring, as before): letters as for blocked terms,
    whitespace as any separators, punctuation as written."""
    pieces = re.findall(r"[a-z0-9]+|\s+|[^a-z0-9\s]+", folded_marker)
    out = []
    for piece in pieces:
        if piece.isspace():
            out.append(_GAP)
        elif piece[0].isalnum():
            out.append(_IN_WORD.join(letter_class(ch) + "+" for ch in piece))
        else:
            out.append(re.escape(piece))
    return "".join(out)
