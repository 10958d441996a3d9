"""What a prompt trips, read through :func:`.normalize.fold` with the allow-listed phrases set
aside: the first injection marker, or the first blocked class."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pixelpipe.safety.normalize import FoldTable, fold, fold_table
from pixelpipe.safety.terms import allowed_pattern, blocked_pattern, marker_pattern, term_words

REMEMBERED = 1024  # verdicts kept (texts up to REMEMBERED_CHARS: at most ~1 M characters)
REMEMBERED_CHARS = 1000


@dataclass(frozen=True, slots=True)
class BlockedClass:
    label: str
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Marker:
    text: str  # as the rule file has it, for the message
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Matcher:
    table: FoldTable
    blocked: tuple[BlockedClass, ...]
    allowed: re.Pattern[str]
    markers: tuple[Marker, ...]
    # text -> (marker, blocked class): a repeated prompt (a cache hit, a retry) is read once
    _verdicts: dict[str, tuple[str | None, str | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def verdict(self, text: str) -> tuple[str | None, str | None]:
        """(:meth:`marker_in`, :meth:`blocked_class_in`) of ``text`` as :meth:`read` reads it,
        remembered for the last :data:`REMEMBERED` short texts (the rules never change)."""
        known = self._verdicts.get(text)
        if known is not None:
            return known
        read = self.read(text)
        marker = self.marker_in(read)
        found = (marker, None if marker is not None else self.blocked_class_in(read))
        if len(text) <= REMEMBERED_CHARS:
            if len(self._verdicts) >= REMEMBERED:
                self._verdicts.pop(next(iter(self._verdicts), ""), None)  # the oldest
            self._verdicts[text] = found
        return found

    def read(self, text: str) -> str:
        """``text`` folded, its allow-listed phrases blanked (so that they also separate what
        stands around them)."""
        return self.allowed.sub(lambda m: " " * len(m.group()), fold(text, self.table))

    def marker_in(self, read: str) -> str | None:
        """The first injection marker in ``read`` text (:meth:`read`), as the rule file has it."""
        return next((m.text for m in self.markers if m.pattern.search(read)), None)

    def blocked_class_in(self, read: str) -> str | None:
        """The label of the first blocked class whose terms ``read`` text (:meth:`read`) has."""
        return next((c.label for c in self.blocked if c.pattern.search(read)), None)


def _folded(entries: Sequence[str], table: FoldTable, what: str) -> list[str]:
    folded = [fold(entry, table) for entry in entries]
    for entry, text in zip(entries, folded, strict=True):
        if not term_words(text) and (what != "injection marker" or not text.strip()):
            raise ValueError(f"the {what} {entry!r} has nothing to match")
    return folded


def build_matcher(
    blocked: Sequence[tuple[str, Sequence[str]]],
    allowed: Sequence[str],
    markers: Sequence[str],
) -> Matcher:
    """Compile rule-file data: ``blocked`` as (label, terms) per class. Raises ValueError for an
    entry with nothing to match (it would match everything or nothing)."""
    table = fold_table()
    return Matcher(
        table=table,
        blocked=tuple(
            BlockedClass(label, re.compile(blocked_pattern(_folded(terms, table, "blocked term"))))
            for label, terms in blocked
        ),
        allowed=re.compile(allowed_pattern(_folded(allowed, table, "allow-list entry"))),
        markers=tuple(
            Marker(m, re.compile(marker_pattern(text)))
            for m, text in zip(markers, _folded(markers, table, "injection marker"), strict=True)
        ),
    )
