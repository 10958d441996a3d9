"""LocalDiskStorage — images as files under one directory (``file:///dir``), the embedded default.

Durability: each object is written to a temp file in its final directory, fsynced, then published
under its final name with ``os.link`` (atomic, and fails if the name exists, so the first writer
wins exactly like S3's put-if-not-exists) — falling back to ``os.replace`` on filesystems without
hard links. Readers therefore never see a partial file, and a crash leaves at most a hidden temp
file. Directories are fsynced so a published name survives power loss. Puts that wait together
are written together and share their fsyncs (:mod:`pixelpipe.storage.local_puts`).

Content type: derived from the extension (the pipeline's keys always carry one, and the database
stores the type too); only when the caller's type disagrees is it kept in a hidden sidecar
``.<name>.ct``. Disk cannot sign URLs: the app serves files through HMAC-signed URLs
(:mod:`pixelpipe.delivery`), so :meth:`presigned_url` is None and :meth:`local_path` is the path.
"""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
from collections import OrderedDict
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pixelpipe.errors import ConfigError, NotFound
from pixelpipe.storage._errors import translated
from pixelpipe.storage._keys import validate_content_type, validate_key
from pixelpipe.storage.base import StoredObject
from pixelpipe.storage.local_puts import KnownDirs, Put, PutBatcher, sidecar_path, write_batch

_TYPES = {
    ".webp": "image/webp",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".avif": "image/avif",
    ".json": "application/json",
}
_DEFAULT_TYPE = "application/octet-stream"
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
INLINE_READ_BYTES = 256 * 1024
RECENT_READ_BYTES = 8 * 1024 * 1024  # small files' bytes kept after a read (RecentReads)


def guess_type(key: str) -> str:
    """Content type implied by the key's extension (what a sidecar-less object reports)."""
    return _TYPES.get(os.path.splitext(key)[1].lower(), _DEFAULT_TYPE)


class LocalDiskStorage:
    """Files under ``root``; blocking filesystem calls run in a worker thread."""

    scheme = "file"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._root = str(self.root)
        self._puts = PutBatcher(self._write_batch)
        self._dirs = KnownDirs(self.root)  # touched by one batch at a time (the batcher's)
        self._recent = RecentReads(RECENT_READ_BYTES)

    @classmethod
    def from_url(cls, url: str) -> LocalDiskStorage:
        """``file:///abs/dir`` (``file://localhost/dir`` too); relative paths are refused."""
        parts = urlsplit(url)
        absolute = parts.path.startswith("/")
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not absolute:
            raise ConfigError(f"PIXELPIPE_STORAGE_URL: expected file:///absolute/dir, got {url!r}")
        return cls(Path(unquote(parts.path)))

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        validate_key(key)
        validate_content_type(content_type)
        path = os.path.join(self._root, key)
        sidecar_type = None if content_type == guess_type(key) else content_type
        with translated("local", "put", key, (OSError,), missing_is_not_found=False):
            await self._puts.put(Put(path, bytes(data), sidecar_type))

    async def get(self, key: str) -> bytes:
        path = self._str_path(key)
        with translated("local", "get", key, (OSError,)):
            small = self._recent.read(path, key)  # most images: no thread hop, one stat
            return small if small is not None else await asyncio.to_thread(_read, path, key)

    async def head(self, key: str) -> StoredObject | None:
        path = self.local_path(key)
        with translated("local", "head", key, (OSError,)):
            return await asyncio.to_thread(self._head_sync, path, key)

    async def delete(self, key: str) -> None:
        path = self._str_path(key)
        self._recent.forget(path)
        with translated("local", "delete", key, (OSError,)):
            await asyncio.to_thread(_unlink_all, Path(path), Path(sidecar_path(path)))

    async def presigned_url(self, key: str, *, expires_in: int) -> str | None:
        """None: files are served by the app behind HMAC-signed URLs."""
        validate_key(key)
        return None

    def _str_path(self, key: str) -> str:
        """:meth:`local_path` as a str: pathlib costs ~10 µs on a cache hit's read."""
        return os.path.join(self._root, validate_key(key))

    def local_path(self, key: str) -> Path:
        """Where ``key`` lives (it may not exist yet); the key rules keep it under ``root``."""
        return self.root / validate_key(key)

    async def check(self) -> None:
        """Ready when the root exists (created if needed) and a file can be created in it."""
        with translated("local", "check", None, (OSError,), missing_is_not_found=False):
            await asyncio.to_thread(self._check_sync)

    async def aclose(self) -> None:
        """Nothing to release: no handles are kept between calls."""

    # --- blocking helpers (run in a thread) ------------------------------------------------

    def _write_batch(self, puts: list[Put]) -> list[BaseException | None]:
        return write_batch(puts, self._dirs)

    def _head_sync(self, path: Path, key: str) -> StoredObject | None:
        try:
            st = path.stat()
        except _MISSING:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return StoredObject(key=key, size=st.st_size, content_type=_content_type(path, key))

    def _check_sync(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.root, prefix=".check-"):
            pass


Identity = tuple[int, int, int, int, int]  # device, inode, size, mtime and ctime (ns)


class RecentReads:
    """The bytes of small files read lately (at most ``budget`` bytes, least recently read out),
    each with the identity its file had: a read that finds the file unchanged costs one ``stat``
    instead of open, fstat, read, read and close — each a syscall that gives the GIL up on the
    event loop's thread. Objects are published whole under a new inode (:func:`_publish`), so a
    replaced or deleted file never matches; a missing one is NotFound as before."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        self._files: OrderedDict[str, tuple[Identity, bytes]] = OrderedDict()

    def read(self, path: str, key: str) -> bytes | None:
        """The file's bytes when it is at most :data:`INLINE_READ_BYTES`, else None."""
        known = self._files.get(path)
        if known is not None:
            try:
                st = os.stat(path)
            except _MISSING as exc:
                self.forget(path)
                raise NotFound(f"no stored object {key!r}") from exc
            if _identity(st) == known[0]:
                self._files.move_to_end(path)
                return known[1]
            self.forget(path)
        read = _read_small(path, key)
        if read is None:
            return None
        identity, data = read
        if len(data) <= self._budget:
            self._files[path] = (identity, data)
            self._used += len(data)
            while self._used > self._budget:
                self._used -= len(self._files.popitem(last=False)[1][1])
        return data

    def forget(self, path: str) -> None:
        gone = self._files.pop(path, None)
        if gone is not None:
            self._used -= len(gone[1])


def _identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_small(path: str, key: str) -> tuple[Identity, bytes] | None:
    """The file's identity and bytes when it is at most :data:`INLINE_READ_BYTES` (read on the
    caller's thread: a local file that size is in the page cache right after it was written,
    and one ``read`` costs less than handing it to a thread), else None. Plain descriptor
    calls: a Python file object costs more than the read itself at this size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except _MISSING as exc:
        raise NotFound(f"no stored object {key!r}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"no stored object {key!r}")
        if st.st_size > INLINE_READ_BYTES:
            return None
        chunks = [os.read(fd, st.st_size + 1)]  # the whole file in one call, and its end seen
        while chunks[-1]:
            chunks.append(os.read(fd, INLINE_READ_BYTES))
        return _identity(st), b"".join(chunks)
    finally:
        os.close(fd)


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except _MISSING as exc:
        raise NotFound(f"no stored object {key!r}") from exc


def _content_type(path: Path, key: str) -> str:
    try:
        return Path(sidecar_path(path)).read_text("ascii").strip() or guess_type(key)
    except _MISSING:
        return guess_type(key)


def _unlink_all(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
