"""Translate foreign storage errors into :mod:`pixelpipe.errors` where they enter.

Only two outcomes matter to the pipeline: the object is not there (:class:`NotFound`, final) or the
backend failed (:class:`StorageError`, retryable — the worker will try the step again). The detail
names the operation, the key and the foreign error's class, never its message: obstore and OS
messages can carry endpoints, bodies and paths that do not belong in a client-facing problem
document. The original exception stays chained (``__cause__``) for the logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pixelpipe.errors import NotFound, PixelpipeError, StorageError


@contextmanager
def translated(
    backend: str,
    op: str,
    key: str | None,
    foreign: tuple[type[BaseException], ...],
    *,
    missing_is_not_found: bool = True,
) -> Iterator[None]:
    """Run the body, re-raising ``foreign`` errors as NotFound / StorageError.

    ``FileNotFoundError`` (obstore's and the OS's "no such object") means NotFound for reads; for
    writes and probes it means the backend itself is broken, hence ``missing_is_not_found``.
    """
    try:
        yield
    except PixelpipeError:
        raise
    except FileNotFoundError as exc:
        if not missing_is_not_found:
            raise StorageError(f"{backend} storage: {op} failed (FileNotFoundError)") from exc
        raise NotFound(f"no stored object {key!r}") from exc
    except foreign as exc:
        where = f" for {key!r}" if key else ""
        raise StorageError(f"{backend} storage: {op} failed{where} ({type(exc).__name__})") from exc
