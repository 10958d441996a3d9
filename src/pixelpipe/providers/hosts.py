"""Where each provider's outputs may be downloaded from (the fetch guard's allowlists)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from pixelpipe.catalog.operator_file import OperatorFile
from pixelpipe.providers.registry import Registration
from pixelpipe.settings import Settings


def output_hosts(
    settings: Settings, registrations: Iterable[Registration]
) -> dict[str, tuple[str, ...]]:
    """Allowlists by provider, from each registration's ``output_hosts``; in test mode the
    configured (fake) base URLs' hosts are allowed too.

    ``PIXELPIPE_OUTPUT_HOSTS`` adds hosts to every allowlist (e.g. a provider behind your own CDN);
    ``*`` lifts the allowlists. An empty allowlist means any host: the fetch guard's scheme and
    address checks (no loopback, private, link-local or metadata addresses) apply regardless.
    """
    hosts = {r.name: r.allowed_hosts(settings) for r in registrations}
    extra = tuple(h.strip().lower() for h in settings.output_hosts.split(",") if h.strip())
    if "*" in extra:  # PIXELPIPE_OUTPUT_HOSTS=*: any host; the address checks still apply
        return {name: () for name in hosts}
    if extra:
        hosts = {name: (*allowed, *extra) if allowed else () for name, allowed in hosts.items()}
    return hosts


def backend_hosts(operator: OperatorFile | None) -> dict[str, tuple[str, ...]]:
    """Each backend of the operator's catalog file may be fetched from its own host only (its
    outputs are ``data:`` URIs or files it serves itself); ``PIXELPIPE_OUTPUT_HOSTS`` does not
    widen these."""
    if operator is None:
        return {}
    return {b.name: (str(urlsplit(b.url).hostname),) for b in operator.backends}
