"""Refuse unsafe start-ups: a non-loopback bind without API keys would expose paid providers."""

from __future__ import annotations

import asyncio
import functools
import ipaddress

from pixelpipe.errors import ConfigError
from pixelpipe.settings import Settings


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (bracketed or not, IPv4-mapped too) and ``localhost``; nothing else."""
    host = host.strip().strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


async def active_keys(settings: Settings) -> int:
    """How many unrevoked API keys the configured database holds (migrating it first)."""
    from pixelpipe.db import open_database
    from pixelpipe.migrations.runner import upgrade_async
    from pixelpipe.security.keys import count_keys

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.effective_database_url)
    db = open_database(settings.effective_database_url)
    try:
        return await count_keys(db, active_only=True)
    finally:
        await db.dispose()


def check_bind(settings: Settings) -> None:
    """Called by ``pixelpipe serve``/``api`` before binding: beyond loopback, keys must exist."""
    if is_loopback(settings.host):
        return
    if asyncio.run(active_keys(settings)) > 0:
        return
    raise ConfigError(
        f"refusing to listen on {settings.host}:{settings.port} without an API key: anyone who can "
        "reach it could spend your provider credits. Create a key first with\n"
        "    pixelpipe keys create --name me --scopes generate,read\n"
        "(it is shown once; send it as `Authorization: Bearer <key>`), or bind 127.0.0.1 "
        "(--host 127.0.0.1) to keep the server local."
    )
