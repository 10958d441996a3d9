"""Where each provider's outputs may be downloaded from (the fetch guard's allowlists)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pixelpipe.settings import Settings

OUTPUT_HOSTS: dict[str, tuple[str, ...]] = {
    "replicate": ("replicate.delivery", "*.replicate.delivery"),
    "fal": (
        "fal.media",
        "*.fal.media",
        "storage.googleapis.com",
        "fal-cdn.batuhan-941.workers.dev",
    ),
    "openai": ("*.blob.core.windows.net",),
    "preview": (),
}


def output_hosts(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Allowlists; in test mode the configured (fake) base URLs' hosts are allowed too.

    ``PIXELPIPE_OUTPUT_HOSTS`` adds hosts to every allowlist (e.g. a provider behind your own CDN);
    ``*`` lifts the allowlists. An empty allowlist means any host: the fetch guard's scheme and
    address checks (no loopback, private, link-local or metadata addresses) apply regardless.
    """
    hosts = dict(OUTPUT_HOSTS)
    if settings.test_mode:
        bases = {
            "replicate": settings.replicate_base_url,
            "fal": settings.fal_queue_url,
            "openai": settings.openai_base_url,
        }
        for name, base in bases.items():
            host = urlsplit(base).hostname
            if host:
                hosts[name] = (*hosts[name], host)
    extra = tuple(h.strip().lower() for h in settings.output_hosts.split(",") if h.strip())
    if "*" in extra:  # PIXELPIPE_OUTPUT_HOSTS=*: any host; the address checks still apply
        return {name: () for name in hosts}
    if extra:
        hosts = {name: (*allowed, *extra) if allowed else () for name, allowed in hosts.items()}
    return hosts
