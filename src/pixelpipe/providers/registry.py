"""The providers: found by scanning ``pixelpipe.providers`` for subpackages with a ``REGISTRATION``.

Adding a provider adds a subpackage (see docs/adding-a-provider.md); nothing here names one.
``build_providers(settings)`` builds the providers whose credentials are set (the offline
``preview`` always); each gets its own ``httpx.AsyncClient`` (from ``client_factory(name)`` when
given) and closes it in ``aclose()``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pixelpipe.providers
from pixelpipe.errors import ConfigError
from pixelpipe.providers.base import Provider
from pixelpipe.providers.registration import BuildContext, ClientFactory, ProviderRegistration
from pixelpipe.settings import Settings

Registration = ProviderRegistration[Any]


def registrations() -> tuple[Registration, ...]:
    """Every provider's registration, by package name (a package without one is a ConfigError)."""
    found = []
    for module in sorted(pkgutil.iter_modules(pixelpipe.providers.__path__), key=lambda m: m.name):
        if module.ispkg:
            found.append(_registration(module.name))
    return tuple(found)


def _registration(package: str) -> Registration:
    module = importlib.import_module(f"{pixelpipe.providers.__name__}.{package}")
    registration = getattr(module, "REGISTRATION", None)
    if not isinstance(registration, ProviderRegistration):
        raise ConfigError(
            f"pixelpipe/providers/{package}/ is a provider package without a REGISTRATION: "
            "define REGISTRATION = ProviderRegistration(...) in its __init__.py "
            "(docs/adding-a-provider.md)"
        )
    if registration.name != package:
        raise ConfigError(
            f"pixelpipe/providers/{package}/ registers provider {registration.name!r}: "
            "a provider's name and its package's name must be the same"
        )
    return registration


def provider_names() -> tuple[str, ...]:
    return tuple(r.name for r in registrations())


def display_names() -> dict[str, str]:
    """Provider name -> how people read it ("openai" -> "OpenAI")."""
    return {r.name: r.display_name for r in registrations()}


def build_providers(
    settings: Settings, client_factory: ClientFactory | None = None
) -> dict[str, Provider]:
    """The providers whose credentials are set (and ``preview``), by name."""
    ctx = BuildContext(settings, client_factory)
    providers: dict[str, Provider] = {}
    for registration in registrations():
        provider = registration.build_provider(ctx)
        if provider is not None:
            providers[provider.name] = provider
    return providers
