"""Refuse unsafe start-ups: a non-loopback bind without API keys would expose paid providers."""

from __future__ import annotations

import ipaddress

from pixelpipe.settings import Settings


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Hook for issue 7 (API keys): binding beyond loopback requires keys to exist."""
    return None
