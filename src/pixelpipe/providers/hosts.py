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
    """Allowlists; in test mode the configured (fake) base URLs' hosts are allowed too."""
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
    return hosts
