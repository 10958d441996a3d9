"""Random bytes from the OS's CSPRNG, read a pool at a time.

Each ``os.urandom`` is a system call made with the GIL released: on the event loop's thread,
while other threads want the GIL (SQL commits, puts), getting it back can take up to the
interpreter's switch interval (5 ms). Job ids, seeds and run ids need a few bytes each; reading
4 KiB at a time makes that one call in hundreds. The bytes are the same CSPRNG's, drawn once each.
The pool belongs to one process: a forked child draws its own bytes, never its parent's.
"""

from __future__ import annotations

import os
import threading

POOL_BYTES = 4096

_lock = threading.Lock()
_pool = b""
_at = 0
_pid = 0


def random_bytes(n: int) -> bytes:
    """``n`` bytes (at most :data:`POOL_BYTES`) from the OS's CSPRNG, never handed out twice."""
    global _pool, _at, _pid
    if not 0 < n <= POOL_BYTES:
        raise ValueError(f"asked for {n} random bytes; 1 to {POOL_BYTES} at a time")
    with _lock:
        if _at + n > len(_pool) or _pid != os.getpid():
            _pool, _at, _pid = os.urandom(POOL_BYTES), 0, os.getpid()
        chunk = _pool[_at : _at + n]
        _at += n
    return chunk


def random_below(limit: int) -> int:
    """A random int in ``[0, limit)`` for ``limit`` ≤ 2**32: 64 random bits reduced modulo
    ``limit`` (a bias under 2**-32)."""
    if not 0 < limit <= 2**32:
        raise ValueError(f"limit must be between 1 and 2**32, not {limit}")
    return int.from_bytes(random_bytes(8), "big") % limit
