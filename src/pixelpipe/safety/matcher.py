"""What a prompt trips, read through :func:`.normalize.fold`: the first injection marker, or the
first blocked class, after the allow-listed phrases are set aside."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pixelpipe.safety.normalize import FoldTable, fold, fold_table
from pixelpipe.safety.terms import allowed_pattern, blocked_pattern, marker_pattern


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

    def folded(self, text: str) -> str:
        return fold(text, self.table)

    def marker_in(self, folded: str) -> str | None:
        """The first injection marker in ``folded`` text, as the rule file writes it."""
        return next((m.text for m in self.markers if m.pattern.search(folded)), None)

    def blocked_class_in(self, folded: str) -> str | None:
        """The label of the first blocked class whose terms ``folded`` text has, allow-listed
        phrases set aside (blanked, so they also separate what stands around them)."""
        cleared = self.allowed.sub(lambda m: " " * len(m.group()), folded)
        return next((c.label for c in self.blocked if c.pattern.search(cleared)), None)


def build_matcher(
    blocked: Sequence[tuple[str, Sequence[str]]],
    allowed: Sequence[str],
    markers: Sequence[str],
) -> Matcher:
    """Compile rule-file data: ``blocked`` as (label, terms) per class."""
    table = fold_table()
    return Matcher(
        table=table,
        blocked=tuple(
            BlockedClass(label, re.compile(blocked_pattern(fold(t, table) for t in terms)))
            for label, terms in blocked
        ),
        allowed=re.compile(allowed_pattern(fold(entry, table) for entry in allowed)),
        markers=tuple(Marker(m, re.compile(marker_pattern(fold(m, table)))) for m in markers),
    )
