"""Fold text into the form the safety matcher reads. For matching only: what is sent to a
provider and what the content key sees (:func:`pixelpipe.intake.normalize_prompt`) never change.

Steps, in order:

1. look-alike letters → the ASCII letter they pass for (:mod:`.confusables`, on the characters
   as written, as TR39 does);
2. NFKC (fullwidth, mathematical and circled letters, ligatures → plain letters), then canonical
   decomposition;
3. one character at a time: combining marks dropped (``é`` → ``e``); format characters (category
   Cf: zero-width space/joiner, soft hyphen, bidi controls, tags), invisible fillers, controls and
   private-use/unassigned code points removed; every whitespace → a space; look-alikes again
   (those NFKC produced: a mathematical capital nu is a Greek Nu, which passes for ``N``); a Latin
   small capital, letter with a stroke or hook, or emoji letter (``🅱``, ``🇧``) → its plain letter
   (by its Unicode name); a
   letter whose capital passes for a Latin one → that letter (``в`` as ``В``, so ``b``: a term in
   another script matches in either case, and ``beнeading`` is read as ``beheading``); case
   folded; ``_`` → ``-`` (so that every word character of the result is a letter or a digit:
   the matcher reads ``_`` as a separator); letters of other scripts, punctuation, symbols and
   emoji kept;
4. a character three or more times in a row → twice.
"""

from __future__ import annotations

import re
import unicodedata

from pixelpipe.safety.confusables import latin_base, skeleton_map
from pixelpipe.safety.leet import SYMBOL_LETTERS

_REMOVED_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cn", "Cs", "Mn", "Me", "Mc"})
# Default-ignorable letters that render as nothing (Hangul fillers, Khmer inherent vowels).
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u17b4\u17b5\u3164\uffa0")
# A character three or more times in a row → twice ("beheaaaaading" → "beheaading"; no English
# word has a letter three times in a row): keeps the matcher's work per position bounded.
_LONG_RUN = re.compile(r"(.)\1{2,}", re.DOTALL)
# Code points whose folding is remembered: every one a prompt may hold is a bound on memory.
_REMEMBERED = 1 << 16


class FoldTable(dict[int, str]):
    """``str.translate`` table built lazily, one code point at a time, then remembered."""

    def __init__(self, skeleton: dict[str, str]) -> None:
        super().__init__()
        self._skeleton = skeleton
        self.look_alikes = {ord(ch): target for ch, target in skeleton.items()}

    def __missing__(self, codepoint: int) -> str:
        folded = self._fold_char(chr(codepoint))
        if len(self) < _REMEMBERED:
            self[codepoint] = folded
        return folded

    def _fold_char(self, ch: str) -> str:
        if ch.isascii():
            if ch.isspace():
                return " "
            if ch == "_":
                return "-"
            return ch.lower() if ch.isprintable() else ""
        if ch.isspace():
            return " "
        if ch in _INVISIBLE_LETTERS or unicodedata.category(ch) in _REMOVED_CATEGORIES:
            return ""
        if ch in self._skeleton:
            return self._skeleton[ch]
        if ch in SYMBOL_LETTERS:
            return SYMBOL_LETTERS[ch]
        base = latin_base(ch)
        if base is not None:
            return base
        capital = ch.upper()
        if capital in self._skeleton:  # в, н, т: their capitals pass for B, H, T
            return self._skeleton[capital]
        folded = ch.casefold()
        if folded != ch:
            return "".join(self._fold_char(part) for part in folded)
        return ch


def fold_table() -> FoldTable:
    return FoldTable(skeleton_map())


def fold(text: str, table: FoldTable) -> str:
    """``text`` as the matcher reads it (see the module docstring)."""
    if not text.isascii():
        text = text.translate(table.look_alikes)
        text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text))
    return _LONG_RUN.sub(r"\1\1", text.translate(table))
