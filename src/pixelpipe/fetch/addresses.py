"""Which IP addresses the fetch guard may connect to.

A provider output URL is attacker-influenced data (a compromised or spoofed provider answer, a
redirect). Anything that is not a public unicast address is refused: loopback, private (RFC 1918,
fc00::/7), link-local (169.254/16 — cloud metadata lives at 169.254.169.254 — and fe80::/10),
unspecified, multicast, reserved, CGNAT and the other not-globally-routable ranges. IPv6 forms
that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4
``2002::/16``) are judged by the IPv4 address inside them too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# what the resolver reads as an IPv4 address in a legacy spelling: 2130706433, 0x7f.1, 127.1
_LEGACY_IPV4 = re.compile(r"^[0-9][0-9a-fA-FxX.]*$")

# Order matters: 169.254/16 is also "private" to Python; name the more specific reason first.
_REFUSALS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified address", lambda ip: ip.is_unspecified),
    ("link-local address", lambda ip: ip.is_link_local),
    ("multicast address", lambda ip: ip.is_multicast),
    ("private address", lambda ip: ip.is_private),
    ("reserved address", lambda ip: ip.is_reserved),
    ("not globally routable", lambda ip: not ip.is_global),
)


def parse_ip(text: str) -> IPAddress | None:
    """The address ``text`` spells (``[::1]`` brackets allowed), or None for a host name."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def literal_ip(host: str) -> IPAddress | None:
    """The address a host *spells* without any DNS: a plain IPv4/IPv6 literal, or an IPv4 address
    in one of the legacy numeric forms the system resolver accepts (``2130706433``, ``0x7f.1``,
    ``127.1``, octal parts) — the address a connection to ``host`` would reach. None for a name."""
    ip = parse_ip(host)
    if ip is not None or not _LEGACY_IPV4.match(host):
        return ip
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def is_loopback_name(host: str) -> bool:
    """``localhost`` and ``*.localhost``: loopback by definition (RFC 6761), whatever DNS says."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def refusal_reason(
    ip: IPAddress, *, allow_loopback: bool = False, allow_private: bool = False
) -> str | None:
    """Why the guard must not connect to ``ip``, or None when it may. ``allow_private``: private
    and loopback addresses too (an operator's own server); link-local (metadata) never."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return refusal_reason(
            ip.ipv4_mapped, allow_loopback=allow_loopback, allow_private=allow_private
        )
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = refusal_reason(inner, allow_loopback=False)
        if reason is not None:
            return f"{reason} (embedded in IPv6)"
    if ip.is_loopback:
        return None if allow_loopback or allow_private else "loopback address"
    if allow_private and ip.is_private and not ip.is_link_local:
        return None
    return next((name for name, refused in _REFUSALS if refused(ip)), None)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour
