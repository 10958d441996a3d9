"""LocalDiskStorage beyond the contract: what is (and is not) on disk, and crash safety."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pixelpipe.errors import ConfigError, InvalidRequest, NotFound, StorageError
from pixelpipe.storage import LocalDiskStorage
from pixelpipe.storage.local import INLINE_READ_BYTES, RecentReads

KEY = "flux-dev/cd/cd0123.png"

# A child process that stalls right after the temp file's data is fsynced, i.e. in the middle of
# a put, so the parent can SIGKILL it at a known point: a real crash, no timing guesswork.
_CRASHING_WRITER = """
import asyncio, os, stat, sys, time
from pathlib import Path
from pixelpipe.storage.local import LocalDiskStorage

real_fsync = os.fsync
def stall_after_file_fsync(fd):
    real_fsync(fd)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        print("stalled", flush=True)
        time.sleep(60)
os.fsync = stall_after_file_fsync
storage = LocalDiskStorage(Path(sys.argv[1]))
asyncio.run(storage.put(sys.argv[2], b"x" * 2_000_000, content_type="image/png"))
"""


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


async def test_escape_attempts_write_nothing_outside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    storage = LocalDiskStorage(root)
    for key in ("../outside.webp", "a/../../outside.webp", str(tmp_path / "abs.webp")):
        with pytest.raises(InvalidRequest):
            await storage.put(key, b"x", content_type="image/webp")
    assert files_under(tmp_path) <= {"root"}


async def test_kill_during_put_leaves_no_partial_file_under_the_final_name(tmp_path: Path) -> None:
    root = tmp_path / "images"
    with subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, str(root), KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        try:
            line = child.stdout.readline()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        assert line == b"stalled\n", child.stderr.read().decode()
    final = root / KEY
    assert not final.exists()
    assert [p.name.startswith(".cd0123.png.") for p in final.parent.iterdir()] == [True]
    storage = LocalDiskStorage(root)
    assert await storage.head(KEY) is None
    with pytest.raises(NotFound):
        await storage.get(KEY)
    await storage.put(KEY, b"whole", content_type="image/png")  # the retry after the crash
    assert await storage.get(KEY) == b"whole"


async def test_failed_publish_cleans_up_and_reports_a_retryable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_link(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "link", broken_link)
    storage = LocalDiskStorage(tmp_path)
    with pytest.raises(StorageError) as caught:
        await storage.put(KEY, b"data", content_type="image/png")
    assert caught.value.retryable
    assert str(tmp_path) not in caught.value.detail  # no filesystem layout in client messages
    assert [p for p in (tmp_path / "flux-dev" / "cd").iterdir()] == []


async def test_without_hard_links_publish_falls_back_to_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    storage = LocalDiskStorage(tmp_path)
    await storage.put(KEY, b"data", content_type="image/png")
    assert await storage.get(KEY) == b"data"
    assert files_under(tmp_path / "flux-dev" / "cd") == {"cd0123.png"}


async def test_sidecar_only_when_the_type_disagrees_with_the_extension(tmp_path: Path) -> None:
    storage = LocalDiskStorage(tmp_path)
    await storage.put("m/aa/plain.png", b"1", content_type="image/png")
    await storage.put("m/aa/odd.png", b"2", content_type="image/x-odd")
    assert files_under(tmp_path / "m" / "aa") == {"plain.png", "odd.png", ".odd.png.ct"}
    await storage.delete("m/aa/odd.png")
    assert files_under(tmp_path / "m" / "aa") == {"plain.png"}


async def test_a_directory_removed_behind_its_back_is_made_again(tmp_path: Path) -> None:
    import shutil

    storage = LocalDiskStorage(tmp_path)
    await storage.put("m/aa/one.png", b"1", content_type="image/png")  # m/aa now remembered
    shutil.rmtree(tmp_path / "m")
    await storage.put("m/aa/two.png", b"2", content_type="image/png")
    assert await storage.get("m/aa/two.png") == b"2"
    assert files_under(tmp_path / "m" / "aa") == {"two.png"}


async def test_published_files_are_world_readable(tmp_path: Path) -> None:
    storage = LocalDiskStorage(tmp_path)
    await storage.put(KEY, b"data", content_type="image/png")
    assert (tmp_path / KEY).stat().st_mode & 0o777 == 0o644


async def test_a_directory_at_the_key_is_not_an_object(tmp_path: Path) -> None:
    storage = LocalDiskStorage(tmp_path)
    await storage.put("a/b/c.png", b"x", content_type="image/png")
    assert await storage.head("a/b") is None
    with pytest.raises(NotFound):
        await storage.get("a/b")
    with pytest.raises(StorageError):
        await storage.put("a/b", b"y", content_type="image/png")


async def test_objects_on_both_sides_of_the_inline_read_size_read_back_whole(
    tmp_path: Path,
) -> None:
    storage = LocalDiskStorage(tmp_path)
    for size in (0, 1, INLINE_READ_BYTES, INLINE_READ_BYTES + 1, 3 * INLINE_READ_BYTES):
        data = os.urandom(size)
        await storage.put(f"sizes/{size}.png", data, content_type="image/png")
        assert await storage.get(f"sizes/{size}.png") == data
    with pytest.raises(NotFound):
        await storage.get("sizes/missing.png")
    (tmp_path / "file").write_bytes(b"x")  # a path through a file: not found either way
    with pytest.raises(NotFound):
        await storage.get("file/below.png")


async def test_check_creates_the_root_and_fails_when_it_cannot(tmp_path: Path) -> None:
    await LocalDiskStorage(tmp_path / "new" / "root").check()
    assert (tmp_path / "new" / "root").is_dir()
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StorageError):
        await LocalDiskStorage(tmp_path / "file" / "root").check()


def test_from_url() -> None:
    assert LocalDiskStorage.from_url("file:///var/lib/px%20images").root == Path(
        "/var/lib/px images"
    )
    assert LocalDiskStorage.from_url("file://localhost/srv/img").root == Path("/srv/img")
    for bad in ("file://otherhost/x", "file:", "file:relative/dir", "s3://bucket"):
        with pytest.raises(ConfigError):
            LocalDiskStorage.from_url(bad)


async def test_a_repeated_read_is_one_stat_and_sees_every_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small files are kept after a read with their file's identity: the next read of an
    unchanged file opens nothing; a file replaced behind the storage's back (another process),
    deleted, or deleted and put again reads as what is on disk now."""
    storage = LocalDiskStorage(tmp_path)
    await storage.put(KEY, b"first", content_type="image/png")
    assert await storage.get(KEY) == b"first"
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: str, *args: object, **kwargs: object) -> int:
        opened.append(path)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counting_open)
    assert await storage.get(KEY) == b"first"
    assert opened == []
    replacement = tmp_path / "other.png"  # another process publishes a new file at the name
    replacement.write_bytes(b"second, longer")
    os.replace(replacement, tmp_path / KEY)
    assert await storage.get(KEY) == b"second, longer"
    assert len(opened) == 1
    (tmp_path / KEY).unlink()  # and removes it
    with pytest.raises(NotFound):
        await storage.get(KEY)
    await storage.put(KEY, b"third", content_type="image/png")
    assert await storage.get(KEY) == b"third"
    await storage.delete(KEY)
    await storage.put(KEY, b"thirD", content_type="image/png")  # same size, same tick maybe
    assert await storage.get(KEY) == b"thirD"


def test_recent_reads_stay_within_their_budget(tmp_path: Path) -> None:
    recent = RecentReads(budget=10)
    for i, size in enumerate((4, 4, 4, 11)):
        (tmp_path / f"{i}.png").write_bytes(bytes([i]) * size)
    for i in range(3):
        assert recent.read(str(tmp_path / f"{i}.png"), f"{i}.png") == bytes([i]) * 4
    assert list(recent._files) == [str(tmp_path / "1.png"), str(tmp_path / "2.png")]
    assert recent._used == 8
    assert recent.read(str(tmp_path / "3.png"), "3.png") == bytes([3]) * 11  # too big to keep
    assert recent._used == 8 and len(recent._files) == 2
