"""The providers: found by scanning ``pixelpipe.providers`` for subpackages with a ``REGISTRATION``.

Adding a provider adds a subpackage (see docs/adding-a-provider.md); nothing here names one.
``build_providers(settings)`` builds the providers whose credentials are set (the offline
``preview`` always); each gets its own ``httpx.AsyncClient`` (from ``client_factory(name)`` when
given) and closes it in ``aclose()``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from typing import Any

import pixelpipe.providers
from pixelpipe.catalog import Catalog, load_catalog
from pixelpipe.catalog.merge import with_operator_models
from pixelpipe.catalog.operator_file import BackendSpec, Known, OperatorFile, load_operator_file
from pixelpipe.errors import ConfigError
from pixelpipe.providers.base import Provider
from pixelpipe.providers.registration import (
    Backend,
    BuildContext,
    ClientFactory,
    ProviderRegistration,
)
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


def backend_kinds() -> dict[str, Registration]:
    """The kinds of self-hosted server: registrations with a ``backend`` builder, by name."""
    return {r.name: r for r in registrations() if r.backend is not None}


def operator_file(settings: Settings) -> OperatorFile | None:
    """The operator's catalog file (``PIXELPIPE_CATALOG_PATH``), checked; None without one."""
    if settings.catalog_path is None:
        return None
    builtin = load_catalog()
    kinds = backend_kinds()
    hosted: dict[str, dict[str, str]] = {r.name: {} for r in registrations() if r.name not in kinds}
    for spec in builtin.models.values():
        for provider, model_id in spec.provider_ids.items():
            hosted.setdefault(provider, {})[spec.name] = model_id
    workflow_kinds = {name for name, r in kinds.items() if r.runs_workflows}
    input_kinds = {name: r.image_inputs for name, r in kinds.items() if r.image_inputs}
    known = Known(kinds, hosted, builtin.models, os.environ, workflow_kinds, input_kinds)
    return load_operator_file(settings.catalog_path, known)


def full_catalog(operator: OperatorFile | None) -> Catalog:
    """The built-in catalog, with the operator's models when there is a catalog file."""
    catalog = load_catalog()
    return catalog if operator is None else with_operator_models(catalog, operator)


def build_providers(
    settings: Settings,
    client_factory: ClientFactory | None = None,
    operator: OperatorFile | None = None,
) -> dict[str, Provider]:
    """The providers whose credentials are set (and ``preview``), by name; and one per backend
    of the operator's catalog file (read from settings when ``operator`` is not given)."""
    ctx = BuildContext(settings, client_factory)
    providers: dict[str, Provider] = {}
    for registration in registrations():
        provider = registration.build_provider(ctx)
        if provider is not None:
            providers[provider.name] = provider
    operator = operator if operator is not None else operator_file(settings)
    for spec in operator.backends if operator else ():
        providers[spec.name] = build_backend(spec, ctx)
    return providers


def build_backend(spec: BackendSpec, ctx: BuildContext) -> Provider:
    """One backend of the catalog file as a provider, built by its kind's registration."""
    registration = backend_kinds().get(spec.kind)
    if registration is None or registration.backend is None:
        raise ConfigError(
            f"{spec.source}: backend {spec.name}: kind {spec.kind!r} is not installed; "
            f"installed kinds: {', '.join(sorted(backend_kinds())) or 'none'}"
        )
    provider = registration.backend(backend_of(spec), ctx)
    if provider.name != spec.name:
        raise ConfigError(
            f"kind {spec.kind} built backend {spec.name} as provider {provider.name!r}: a "
            "kind's backend builder must name the provider after Backend.name"
        )
    return provider


def backend_of(spec: BackendSpec) -> Backend:
    price = spec.usd_per_gpu_hour
    return Backend(
        name=spec.name,
        kind=spec.kind,
        url=spec.url,
        api_key=spec.api_key,
        slots=spec.slots,
        usd_per_gpu_hour=None if price is None else float(price),
        timeout_s=spec.timeout_s,
        options=spec.options,
        source=spec.source,
    )
