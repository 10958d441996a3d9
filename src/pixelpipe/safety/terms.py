"""Blocked terms, allow-list entries and injection markers → regular expressions over folded text
(:func:`pixelpipe.safety.normalize.fold`).

A blocked term matches, on word boundaries:

- each letter as itself or a leetspeak stand-in (:mod:`.leet`), repeated (``beheaaading``,
  ``b.e.e.e.heading``);
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

_STAND_IN_SYMBOLS = re.escape(STAND_IN_SYMBOLS)
# Folded text has no "_" (it is folded to "-"): \w is a letter or a digit, of any script.
# between the letters of a word: anything but a letter, a digit, a stand-in or a space
_IN_WORD = f"[^\\w\\s{_STAND_IN_SYMBOLS}]*"
# between letters spelled out one at a time, and where a term has a space
_SPELLED = f"[^\\w{_STAND_IN_SYMBOLS}]+"
_GAP = f"[^\\w{_STAND_IN_SYMBOLS}]*"
_START = r"(?<!\w)"
_END = r"(?!\w)"
MAX_REPEATS = 20  # bounded, so that the time per start is bounded: checks stay linear


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


def _chars(ch: str) -> frozenset[str]:
    return frozenset(ch + STAND_INS.get(ch, ""))


def _letter(ch: str, between: str, followers: Iterable[str] = ()) -> str:
    """One letter of a term, repeated up to :data:`MAX_REPEATS` times, with separators between
    repeats (a longer plain run of one character is shortened by :func:`.normalize.fold` first).

    The repeats are possessive (never given back, so a long run of one character costs linear
    time) unless a letter that can follow reads one of the same characters (``ee`` in
    ``deepnude``, ``l`` then ``i`` both reading ``1``): then giving back is what lets it match.
    """
    cls = letter_class(ch)
    shared = any(_chars(ch) & _chars(follower) for follower in followers)
    return f"{cls}(?:{between}{cls}){{0,{MAX_REPEATS - 1}}}" + ("" if shared else "+")


def _emit(node: _Trie, between: str, after_word: frozenset[str]) -> str:
    """The pattern of the letters below ``node``; ``after_word``: the letters that can follow
    the word's end (the next word's first letters, which a missing space puts right after)."""
    alternatives = []
    for ch, child in sorted(node.children.items()):
        followers = set(child.children) | (after_word if child.end else set())
        rest = ""
        if child.children:
            rest = f"(?:{between}{_emit(child, between, after_word)})" + ("?" if child.end else "")
        alternatives.append(_letter(ch, between, followers) + rest)
    return alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"


def _words_pattern(words: list[frozenset[str]], between: str, gap: str) -> str:
    parts = []
    for at, forms in enumerate(words):
        trie = _Trie()
        for form in forms:
            trie.add(form)
        after_word = (
            frozenset(form[0] for form in words[at + 1]) if at + 1 < len(words) else frozenset()
        )
        parts.append(_emit(trie, between, after_word))
    return gap.join(parts)


def term_words(folded_term: str) -> list[str]:
    """The words of a folded term: runs of letters and digits (any other character splits)."""
    return re.findall(r"\w+", folded_term)


def blocked_pattern(folded_terms: Iterable[str]) -> str:
    """One pattern for a class's terms: written with in-word separators, or spelled out."""
    alternatives = []
    for term in folded_terms:
        words = [word_forms(word) for word in term_words(term)]
        if not words:
            continue
        alternatives.append(_words_pattern(words, _IN_WORD, _GAP))
        alternatives.append(_words_pattern(words, _SPELLED, _GAP))
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
    whitespace as any separators, punctuation as written; or its letters spelled out one at a
    time (its punctuation then counts as one more separator)."""
    pieces = re.findall(r"\w+|\s+|[^\w\s]+", folded_marker)
    out = []
    for piece in pieces:
        if piece.isspace():
            out.append(_GAP)
        elif piece[0].isalnum():
            # the last letter may be followed by anything (punctuation as written): greedy
            followers = [piece[i + 1 : i + 2] or piece[i] for i in range(len(piece))]
            out.append(_IN_WORD.join(map(_letter, piece, [_IN_WORD] * len(piece), followers)))
        else:
            out.append(re.escape(piece))
    letters = re.sub(r"\W", "", folded_marker)
    spelled = _SPELLED.join(
        _letter(ch, _SPELLED, letters[i + 1 : i + 2]) for i, ch in enumerate(letters)
    )
    return f"{''.join(out)}|{spelled}" if len(letters) > 1 else "".join(out)
