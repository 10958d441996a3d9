"""``pixelpipe.entropy``: the OS's random bytes read a pool at a time, never handed out twice,
never shared with a forked child, safe across threads."""

from __future__ import annotations

import os
import threading

import pytest

from pixelpipe import entropy
from pixelpipe.entropy import POOL_BYTES, random_below, random_bytes


def test_draws_across_pools_never_repeat() -> None:
    draws = [random_bytes(16) for _ in range(3 * POOL_BYTES // 16 + 7)]  # several pools' worth
    assert all(len(d) == 16 for d in draws)
    assert len(set(draws)) == len(draws)


def test_threads_drawing_at_once_never_get_the_same_bytes() -> None:
    got: list[bytes] = []

    def draw() -> None:
        mine = [random_bytes(10) for _ in range(2000)]
        got.extend(mine)  # list.extend is atomic under the GIL

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8000 and len(set(got)) == 8000


def test_a_forked_child_draws_its_own_bytes_not_its_parents() -> None:
    entropy._pool = b""
    random_bytes(8)  # the parent holds a fresh pool: its next 16 bytes come from it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent
        os.close(read)
        os.write(write, random_bytes(16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16 and child != random_bytes(16)


@pytest.mark.parametrize("n", [0, -1, POOL_BYTES + 1])
def test_a_size_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="random bytes"):
        random_bytes(n)


def test_random_below_stays_in_range_and_spreads() -> None:
    values = [random_below(10) for _ in range(5000)]
    assert set(values) == set(range(10))
    assert all(400 < values.count(v) < 600 for v in range(10))
    top = 2**32
    assert all(0 <= random_below(top) < top for _ in range(100))
    with pytest.raises(ValueError):
        random_below(0)
    with pytest.raises(ValueError):
        random_below(2**32 + 1)
