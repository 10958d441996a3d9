"""Local disk puts that wait together are written together (storage/local_puts.py): they share
their directory's fsync, yet each object's bytes are synced before its name is linked, its name
before its put returns, and one put's failure is its own."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from pixelpipe.errors import StorageError
from pixelpipe.storage import LocalDiskStorage

Event = tuple[str, str]  # (what happened, to which path)


def watch_syscalls(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[Event]:
    """Record every fsync (of a file or a directory, by path) and link under ``root``."""
    events: list[Event] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        real_fsync(fd)
        kind = "fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file"
        events.append((kind, os.readlink(f"/proc/self/fd/{fd}")))

    def link(src: str, dst: str) -> None:
        real_link(src, dst)
        events.append(("link", f"{src} -> {dst}"))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    return events


async def test_puts_waiting_together_share_their_directory_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalDiskStorage(tmp_path)
    await storage.put("m/aa/first.png", b"first", content_type="image/png")  # the directory made
    events = watch_syscalls(monkeypatch, tmp_path)
    keys = [f"m/aa/{i}.png" for i in range(20)]
    await asyncio.gather(*(storage.put(k, k.encode(), content_type="image/png") for k in keys))
    assert [await storage.get(k) for k in keys] == [k.encode() for k in keys]
    kinds = [kind for kind, _ in events]
    assert kinds.count("fsync file") == 20 and kinds.count("link") == 20
    assert kinds.count("fsync dir") == 1  # one at a time: 20


async def test_each_objects_bytes_are_synced_before_its_name_and_its_name_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalDiskStorage(tmp_path)
    await storage.put("m/aa/first.png", b"first", content_type="image/png")
    await storage.put("m/bb/first.png", b"first", content_type="image/png")
    events = watch_syscalls(monkeypatch, tmp_path)
    returned: dict[str, int] = {}

    async def put(key: str) -> None:
        await storage.put(key, key.encode(), content_type="image/png")
        returned[key] = len(events)  # what had happened when this put returned

    keys = [f"m/{d}/{i}.png" for i in range(6) for d in ("aa", "bb")]
    await asyncio.gather(*(put(k) for k in keys))
    for key in keys:
        path = str(tmp_path / key)
        (linked,) = [n for n, (kind, what) in enumerate(events) if what.endswith(f"-> {path}")]
        temp = events[linked][1].split(" -> ")[0]
        synced = [n for n, e in enumerate(events) if e == ("fsync file", temp)]
        dir_synced = [
            n
            for n, e in enumerate(events)
            if e == ("fsync dir", os.path.dirname(path)) and n > linked
        ]
        assert synced and synced[0] < linked, f"{key}: linked before its bytes were synced"
        assert dir_synced and dir_synced[0] < returned[key], f"{key}: returned before its name"


async def test_one_failing_put_in_a_batch_fails_alone(tmp_path: Path) -> None:
    storage = LocalDiskStorage(tmp_path)
    (tmp_path / "m" / "aa" / "taken.png").mkdir(parents=True)  # a directory holds that name
    keys = ["m/aa/one.png", "m/aa/taken.png", "m/aa/two.png"]
    outcomes = await asyncio.gather(
        *(storage.put(k, b"x", content_type="image/png") for k in keys), return_exceptions=True
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], StorageError)
    assert await storage.get("m/aa/one.png") == b"x" and await storage.get("m/aa/two.png") == b"x"
    leftovers = [p.name for p in (tmp_path / "m" / "aa").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the failed put's temp file is gone


def test_one_storage_puts_from_one_event_loop_then_another(tmp_path: Path) -> None:
    """A loop that ended (a CLI command's ``asyncio.run``) leaves nothing that blocks the next."""
    storage = LocalDiskStorage(tmp_path)
    for n in range(3):
        asyncio.run(storage.put(f"m/aa/{n}.png", b"x", content_type="image/png"))
    assert sorted(p.name for p in (tmp_path / "m" / "aa").iterdir()) == ["0.png", "1.png", "2.png"]
