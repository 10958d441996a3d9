"""Local disk's puts, written in batches that share their fsyncs.

Each object is written to a temp file in its final directory, fsynced, then published under its
final name with ``os.link`` (atomic, and fails if the name exists, so the first writer wins
exactly like S3's put-if-not-exists) — falling back to ``os.replace`` on filesystems without hard
links — and its directory is fsynced, all before its put returns. Puts that wait together go
through those steps together, in one worker-thread hop (:class:`PutBatcher`, the group commit of
:mod:`pixelpipe.group_commit` for files): every temp file is written first, then each is
fsynced — a journaling filesystem commits the first fsync's transaction with the others' data in
it, so the rest find little left to do — then each is linked, then each directory is fsynced
once. One put's failure is its own. Durability is exactly that of one put at a time: an object's
bytes are on disk before its name, and its name before its put returns. Measured in
docs/performance.md, "Tenth pass".
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_BATCH = 64  # puts written in one thread hop, at most
_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
_temp_names = itertools.count()


@dataclass
class Put:
    """One object to write: ``data`` under ``path``; ``sidecar_type``, the content type to keep
    beside it when its extension does not imply it (None: a leftover sidecar is removed)."""

    path: str
    data: bytes
    sidecar_type: str | None = None
    fd: int = -1  # the temp file, open while it is written and synced
    temp: str = ""

    @property
    def directory(self) -> str:
        return os.path.dirname(self.path)


Outcome = BaseException | None
WriteBatch = Callable[[list[Put]], list[Outcome]]


class PutBatcher:
    """Puts waiting together go to ``write`` (e.g. :func:`write_batch`) as one batch in a worker
    thread; puts that arrive while a batch is written wait for the next one."""

    def __init__(self, write: WriteBatch) -> None:
        self._write = write
        self._waiting: list[tuple[Put, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def put(self, item: Put) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._task.get_loop() is not loop:
            self._task, self._waiting = None, []  # a loop that ended took its waiters with it
        fut: asyncio.Future[None] = loop.create_future()
        self._waiting.append((item, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._writer())
        await fut

    async def _writer(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                outcomes = await asyncio.to_thread(self._write, [item for item, _ in batch])
            except Exception as exc:  # the thread could not run it (an executor shut down)
                outcomes = [exc] * len(batch)
            for (_, fut), error in zip(batch, outcomes, strict=True):
                if fut.done():  # its caller gave up waiting; the object is written all the same
                    continue
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)


class KnownDirs:
    """The directories under ``root`` made (or seen) durable: a put into one costs no stat."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[str] = set()

    def ensure(self, directory: str) -> None:
        if directory not in self._dirs:
            makedirs_durable(Path(directory), self.root)
            self._dirs.add(directory)

    def forget(self, directory: str) -> bool:
        """Whether ``directory`` was known (it is not any more)."""
        known = directory in self._dirs
        self._dirs.discard(directory)
        return known


def write_batch(puts: list[Put], dirs: KnownDirs) -> list[Outcome]:
    """Write ``puts`` durably (blocking, in the order the module says); each one's outcome."""
    outcomes: list[Outcome] = [None] * len(puts)
    written = [i for i, p in enumerate(puts) if _written(p, dirs, outcomes, i)]
    synced = [i for i in written if _synced(puts[i], outcomes, i)]
    published: dict[str, list[int]] = {}
    for i in synced:
        if _published(puts[i], outcomes, i):
            published.setdefault(puts[i].directory, []).append(i)
    for directory, members in published.items():
        try:
            fsync_dir(directory)
        except OSError as exc:
            for i in members:
                outcomes[i] = exc
    return outcomes


def _written(put: Put, dirs: KnownDirs, outcomes: list[Outcome], i: int) -> bool:
    """The temp file written (not yet synced), its sidecar in place; False when there is
    nothing to write (the name exists: content-addressed, the first writer won) or it failed."""
    try:
        if os.path.isfile(put.path):
            return False
        try:
            _write_temp(put, dirs)
        except FileNotFoundError:
            if not dirs.forget(put.directory):
                raise
            _drop_temp(put)
            _write_temp(put, dirs)  # removed behind our back: made again, once
        return True
    except Exception as exc:
        outcomes[i] = exc
        _drop_temp(put)
        return False


def _write_temp(put: Put, dirs: KnownDirs) -> None:
    dirs.ensure(put.directory)
    _set_sidecar(put)
    put.temp, put.fd = _open_temp(put.path)
    _write_all(put.fd, put.data)
    os.fchmod(put.fd, 0o644)  # whatever the umask


def _synced(put: Put, outcomes: list[Outcome], i: int) -> bool:
    try:
        os.fsync(put.fd)
    except Exception as exc:
        outcomes[i] = exc
        _drop_temp(put)
        return False
    os.close(put.fd)
    put.fd = -1
    return True


def _published(put: Put, outcomes: list[Outcome], i: int) -> bool:
    """The synced temp file linked under its final name (unless another writer got there first),
    and the temp name removed."""
    try:
        _link(put.temp, put.path)
        return True
    except Exception as exc:
        outcomes[i] = exc
        return False
    finally:
        _drop_temp(put)


def _link(temp: str, path: str) -> None:
    try:
        os.link(temp, path)
    except FileExistsError:
        if not os.path.isfile(path):
            raise  # a directory holds that name: the key cannot be stored here
        # else a concurrent put of the same (content-addressed) key won
    except OSError as exc:
        if exc.errno not in _NO_HARDLINKS:
            raise
        os.replace(temp, path)


def _set_sidecar(put: Put) -> None:
    sidecar = sidecar_path(put.path)
    if put.sidecar_type is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sidecar)  # a leftover from a deleted object
    else:
        os.replace(temp_copy(sidecar, put.sidecar_type.encode()), sidecar)


def _open_temp(path: str) -> tuple[str, int]:
    """A new hidden temp file beside ``path``: its name and descriptor."""
    directory, name = os.path.split(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        temp = os.path.join(directory, f".{name}.{os.getpid()}.{next(_temp_names)}.tmp")
        try:
            return temp, os.open(temp, flags, 0o644)
        except FileExistsError:  # left by a crashed process that had our pid: next name
            continue


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _drop_temp(put: Put) -> None:
    if put.fd >= 0:
        with contextlib.suppress(OSError):
            os.close(put.fd)
        put.fd = -1
    if put.temp:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(put.temp)
        put.temp = ""


def temp_copy(path: str, data: bytes) -> str:
    """Write ``data`` durably to a hidden temp file beside ``path`` and return its name."""
    temp, fd = _open_temp(path)
    try:
        _write_all(fd, data)
        os.fchmod(fd, 0o644)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    os.close(fd)
    return temp


def sidecar_path(path: str | Path) -> str:
    """Where an object's content type is kept when its extension does not imply it."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.ct")


def makedirs_durable(directory: Path, root: Path) -> None:
    """Create missing directories down to ``directory`` and fsync each new entry's parent."""
    if directory.is_dir():
        return
    if directory == root:
        directory.mkdir(parents=True, exist_ok=True)
        return
    makedirs_durable(directory.parent, root)
    with contextlib.suppress(FileExistsError):
        directory.mkdir()
    fsync_dir(directory.parent)


def fsync_dir(directory: Path | str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
