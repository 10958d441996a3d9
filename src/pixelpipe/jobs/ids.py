"""Server-generated, time-sortable ids (ULID layout, Crockford base32). Never used as paths."""

from __future__ import annotations

import os
import re
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_RE = re.compile(r"^gen_[0-9a-hjkmnp-tv-z]{26}$")


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_job_id(now: float | None = None) -> str:
    ms = int((time.time() if now is None else now) * 1000)
    return "gen_" + _b32(ms, 10) + _b32(_random_80_bits(), 16)


_POOL_BYTES = 10 * 256
_pool = b""
_pool_at = 0
_pool_pid = 0


def _random_80_bits() -> int:
    """80 bits from the OS's CSPRNG, read 256 ids' worth at a time (one syscall, not 256).

    The pool belongs to one process: a forked child reads its own, never its parent's bytes."""
    global _pool, _pool_at, _pool_pid
    if _pool_at + 10 > len(_pool) or _pool_pid != os.getpid():
        _pool, _pool_at, _pool_pid = secrets.token_bytes(_POOL_BYTES), 0, os.getpid()
    chunk = _pool[_pool_at : _pool_at + 10]
    _pool_at += 10
    return int.from_bytes(chunk, "big")


def is_job_id(value: str) -> bool:
    return bool(ID_RE.match(value))
