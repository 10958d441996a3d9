"""The forms of a word a blocked term also covers: plural, -ing, -ed, -er (and their plurals).

English spelling rules only as far as they matter for matching: a final ``e`` is dropped before
a vowel (``nude`` → ``nuding``), a final consonant + ``y`` becomes ``i`` (``nudify`` →
``nudified``); a doubled final consonant needs no rule (the matcher accepts repeated letters).
A word written in an inflected form (``beheading``, ``dismembered``) also covers its stem's forms.
"""

from __future__ import annotations

_SUFFIXES = ("s", "es", "ing", "ings", "ed", "er", "ers")
_VOWELS = frozenset("aeiou")
_MIN_STEMMED = 6  # "beheading" → "behead"; shorter words ending in -ing/-ed are left alone


def word_forms(word: str) -> frozenset[str]:
    """``word`` and its inflections; words of fewer than three letters are left as they are."""
    if len(word) < 3 or not word.isalpha():
        return frozenset({word})
    forms = set(_forms_of(word))
    for ending in ("ing", "ed"):
        if word.endswith(ending) and len(word) >= _MIN_STEMMED:
            stem = word[: -len(ending)]
            forms |= _forms_of(stem) | _forms_of(stem + "e")
    return frozenset(forms)


def _forms_of(word: str) -> set[str]:
    forms = {word} | {word + suffix for suffix in _SUFFIXES}
    if word.endswith("e"):
        forms |= {word[:-1] + suffix for suffix in _SUFFIXES if suffix[0] in "ie"}
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        forms |= {word[:-1] + "i" + suffix for suffix in ("es", "ed", "er", "ers")}
    return forms
