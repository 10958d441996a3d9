"""Server-generated, time-sortable ids (ULID layout, Crockford base32). Never used as paths."""

from __future__ import annotations

import re
import time

from pixelpipe.entropy import random_bytes

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_RE = re.compile(r"^gen_[0-9a-hjkmnp-tv-z]{26}$")


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> two letters


def _b32(value: int, length: int) -> str:
    """``value`` as ``length`` (even) base32 letters, most significant first: two at a time."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(5 * length - 10, -1, -10)])


def new_job_id(now: float | None = None) -> str:
    ms = int((time.time() if now is None else now) * 1000)
    return "gen_" + _b32(ms, 10) + _b32(_random_80_bits(), 16)


def _random_80_bits() -> int:
    """80 bits from the OS's CSPRNG (:mod:`pixelpipe.entropy`: read a pool at a time)."""
    return int.from_bytes(random_bytes(10), "big")


def is_job_id(value: str) -> bool:
    return bool(ID_RE.match(value))
