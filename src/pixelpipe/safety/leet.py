"""Leetspeak: which typed characters stand for which letter.

The matcher reads a blocked term's letter as any of its stand-ins (``o`` as ``o`` or ``0``), so
the prompt itself is not rewritten and ``1`` can be read as ``i`` or ``l``. A small, common set on
purpose: each stand-in is one more way an ordinary prompt could spell a blocked word.
"""

from __future__ import annotations

STAND_INS: dict[str, str] = {
    "a": "4@",
    "b": "8",
    "e": "3",
    "g": "96",
    "i": "1!|",
    "l": "1|",
    "o": "0",
    "s": "5$",
    "t": "7",
    "z": "2",
}

# Characters used as stand-ins that are not letters or digits: never read as separators.
STAND_IN_SYMBOLS = "@$!|"

# Non-ASCII symbols written for a letter that Unicode's confusables do not cover.
SYMBOL_LETTERS: dict[str, str] = {"€": "e", "£": "l", "¢": "c", "§": "s", "¡": "i"}
