"""One way for a CLI command to run "in this process, or on a server with ``--server URL``".

:func:`here_or_there` runs ``op(services, None)`` against the local data directory (a
:class:`~pixelpipe.pipeline.Pipeline`, with or without its worker) or ``op(None, client)``
against a server through :class:`~pixelpipe.client.Client`, which turns the server's problem
answers into the same error classes the use cases raise. Either way a :class:`PixelpipeError`
ends the command with its message, and a server that cannot be reached says so. Imports stay
lazy (see :mod:`pixelpipe.cli`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from pixelpipe.cli_output import die, load_settings_or_die, unreachable

if TYPE_CHECKING:
    from pixelpipe.client import Client
    from pixelpipe.services import Services

T = TypeVar("T")
Op = Callable[["Services | None", "Client | None"], Awaitable[T]]


def here_or_there(
    server: str | None,
    api_key: str | None,
    op: Op[T],
    *,
    worker: bool = False,
    timeout_s: float = 120.0,
) -> T:
    """``op(services, None)`` in this process (its worker running when ``worker``), or
    ``op(None, client)`` against ``server``; a :class:`PixelpipeError` ends the command."""
    import asyncio

    from pixelpipe.errors import PixelpipeError

    async def here() -> T:
        from pixelpipe.pipeline import Pipeline

        async with Pipeline(load_settings_or_die(), worker=worker) as p:
            return await op(p.services, None)

    async def there(url: str) -> T:
        import httpx

        from pixelpipe.client import Client

        try:
            async with Client(url, api_key=api_key, timeout=timeout_s) as client:
                return await op(None, client)
        except httpx.TransportError as exc:
            unreachable(url, exc)

    try:
        return asyncio.run(there(server) if server else here())
    except PixelpipeError as exc:
        die(exc)
