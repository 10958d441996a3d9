"""Build the hosted providers whose credentials are configured.

``build_providers(settings)`` returns ``{"replicate": …, "fal": …, "openai": …}`` restricted to the
providers with a key set (``REPLICATE_API_TOKEN``, ``FAL_KEY``, ``OPENAI_API_KEY``). The built-in
``preview`` provider is added by the caller. Each provider gets its own ``httpx.AsyncClient``
(from ``client_factory(name)`` when given, e.g. to inject a transport in tests) and closes it in
``aclose()``.

Base URLs point the clients at the local fakes (``pixelpipe fake-providers``); plain ``http://``
is accepted only for loopback hosts or with ``PIXELPIPE_TEST_MODE=true``, so that a key is never
sent in clear text by accident.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from pixelpipe.errors import ConfigError
from pixelpipe.providers.base import Provider
from pixelpipe.providers.fal import FalProvider
from pixelpipe.providers.http import DEFAULT_TIMEOUT
from pixelpipe.providers.openai import GENERATION_TIMEOUT, OpenAIProvider
from pixelpipe.providers.replicate import ReplicateProvider
from pixelpipe.settings import Settings

ClientFactory = Callable[[str], httpx.AsyncClient]


def check_base_url(url: str, variable: str, *, test_mode: bool) -> str:
    """``url`` if it is https (or http to loopback / in test mode); ConfigError otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and (test_mode or _loopback(parts.hostname)):
        return url
    raise ConfigError(
        f"{variable}={url!r} must be an https:// URL (http:// only for 127.0.0.1/localhost "
        "or with PIXELPIPE_TEST_MODE=true)"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _client(factory: ClientFactory | None, name: str) -> httpx.AsyncClient | None:
    return factory(name) if factory else None


def _timeout(s: Settings, default: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.Timeout:
    """``PIXELPIPE_PROVIDER_TIMEOUT_S`` as the timeout of provider calls, else ``default``."""
    if s.provider_timeout_s is None:
        return default
    return httpx.Timeout(s.provider_timeout_s, connect=min(5.0, s.provider_timeout_s))


def _replicate(s: Settings, factory: ClientFactory | None) -> Provider | None:
    token = s.replicate_api_token.get_secret_value()
    if not token:
        return None
    return ReplicateProvider(
        token,
        base_url=check_base_url(
            s.replicate_base_url, "PIXELPIPE_REPLICATE_BASE_URL", test_mode=s.test_mode
        ),
        webhook_secret=s.replicate_webhook_secret.get_secret_value(),
        client=_client(factory, "replicate"),
        timeout=_timeout(s),
    )


def _fal(s: Settings, factory: ClientFactory | None) -> Provider | None:
    key = s.fal_key.get_secret_value()
    if not key:
        return None
    return FalProvider(
        key,
        queue_url=check_base_url(s.fal_queue_url, "PIXELPIPE_FAL_QUEUE_URL", test_mode=s.test_mode),
        jwks_url=check_base_url(s.fal_jwks_url, "PIXELPIPE_FAL_JWKS_URL", test_mode=s.test_mode),
        client=_client(factory, "fal"),
        timeout=_timeout(s),
    )


def _openai(s: Settings, factory: ClientFactory | None) -> Provider | None:
    key = s.openai_api_key.get_secret_value()
    if not key:
        return None
    return OpenAIProvider(
        key,
        base_url=check_base_url(
            s.openai_base_url, "PIXELPIPE_OPENAI_BASE_URL", test_mode=s.test_mode
        ),
        client=_client(factory, "openai"),
        timeout=_timeout(s, GENERATION_TIMEOUT),
    )


_BUILDERS = (_replicate, _fal, _openai)


def build_providers(
    settings: Settings, client_factory: ClientFactory | None = None
) -> dict[str, Provider]:
    """The hosted providers whose credentials are set, by name."""
    providers: dict[str, Provider] = {}
    for build in _BUILDERS:
        provider = build(settings, client_factory)
        if provider is not None:
            providers[provider.name] = provider
    return providers
