"""What a provider declares once: its :class:`ProviderRegistration`.

A provider is a subpackage ``pixelpipe/providers/<name>/`` whose ``__init__`` defines
``REGISTRATION``; :mod:`pixelpipe.providers.registry` finds it there. The registration says which
settings the provider reads (a :class:`~pixelpipe.settings.SettingsSection`), how to build its
client from them (``None`` while its credential is unset), where its outputs may be downloaded
from, and how ``pixelpipe fake-providers`` serves its fake. Its catalog and prices are data files
beside it (``models.toml``, ``prices.toml``). See docs/adding-a-provider.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from pixelpipe.catalog.operator_spec import InputCheck
from pixelpipe.errors import ConfigError
from pixelpipe.providers.base import Provider
from pixelpipe.providers.http import DEFAULT_TIMEOUT, ProviderIdentity
from pixelpipe.settings import Settings, SettingsSection

ClientFactory = Callable[[str], httpx.AsyncClient]
S = TypeVar("S", bound=SettingsSection)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class OutputHosts:
    """Where a provider's outputs may be downloaded from: the fetch guard's allowlist.

    ``hosts``: exact names and ``*.`` wildcards; an empty tuple allows any public host (the
    guard's address checks always apply). ``test_mode_base_url``: the section field holding the
    provider's base URL, whose host is allowed too when ``PIXELPIPE_TEST_MODE=true`` (the fakes
    serve outputs from their own host).
    """

    hosts: tuple[str, ...]
    test_mode_base_url: str | None = None


@dataclass(frozen=True, slots=True)
class FakeSpec:
    """How ``pixelpipe fake-providers`` serves the provider's fake.

    ``factory``: ``"module:Class"`` of the fake (built with ``behaviour=`` and ``public_url=``,
    with an ``app`` to mount and ``aclose()``); imported only when the fakes run. ``env``: the
    variables that point pixelpipe at the fake mounted at the given URL (``BASE/<name>``).
    """

    factory: str
    env: Callable[[str], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What building a client needs besides the provider's own section."""

    settings: Settings
    client_factory: ClientFactory | None = None  # e.g. to inject a transport in tests

    def client(self, name: str) -> httpx.AsyncClient | None:
        return self.client_factory(name) if self.client_factory else None

    def timeout(self, default: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.Timeout:
        """``PIXELPIPE_PROVIDER_TIMEOUT_S`` as the timeout of provider calls, else ``default``."""
        return _timeout(self.settings.provider_timeout_s, default)

    def backend_timeout(self, backend: Backend, default: httpx.Timeout) -> httpx.Timeout:
        """The backend's own ``timeout_s``, else ``PIXELPIPE_PROVIDER_TIMEOUT_S``, else the kind's
        ``default``."""
        if backend.timeout_s is not None:
            return _timeout(backend.timeout_s, default)
        return self.timeout(default)

    def base_url(self, section: SettingsSection, field: str) -> str:
        """The URL in ``section.<field>``, checked by :func:`check_base_url`."""
        url = str(getattr(section, field))
        variable = type(section).variable(field)
        return check_base_url(url, variable, test_mode=self.settings.test_mode)


@dataclass(frozen=True, slots=True)
class Backend:
    """One self-hosted model server, as the operator's catalog file describes it (issue 14).

    A *kind* of server (cog, an OpenAI-compatible image server, AUTOMATIC1111/Forge) is a provider
    package whose registration has a :attr:`ProviderRegistration.backend` builder; each backend
    of that kind in the catalog becomes one provider, named after the backend.
    """

    name: str  # the provider name it runs under: in PIXELPIPE_PROVIDER_ORDER, prices, the ledger
    kind: str  # the registration that builds it ("cog", "openai_compatible", "a1111")
    url: str  # its base URL (plain http allowed: an operator's own network)
    api_key: str = ""  # read from the variable the catalog names; never written in the file
    slots: int = 1  # how many runs it takes at once; pixelpipe never sends it more
    usd_per_gpu_hour: float | None = None  # None: its runs are recorded unpriced
    timeout_s: float | None = None  # per call; None: the kind's default
    options: Mapping[str, Any] = field(default_factory=dict)  # the kind's own keys
    source: str = ""  # where it is defined ("catalog.toml:12"), for error messages

    def identity(self, key: str = "the api key") -> ProviderIdentity:
        """Who is talking, for error messages: the backend and where the catalog defines it."""
        where = f" ({self.source})" if self.source else ""
        return ProviderIdentity(
            self.name,
            f"{key} of backend {self.name!r}{where}",
            f"the url of backend {self.name!r}{where}",
        )


@dataclass(frozen=True, slots=True)
class ProviderRegistration(Generic[S]):
    """Everything the rest of pixelpipe needs to know about one provider."""

    name: str  # as in the catalog, prices, PIXELPIPE_PROVIDER_ORDER; the package's name
    display_name: str  # how the web page names it ("OpenAI")
    settings: type[S]  # its keys and URLs
    build: Callable[[S, BuildContext], Provider | None]  # None while its credential is unset
    output_hosts: OutputHosts  # required: without it every URL output would be refused, paid
    fake: FakeSpec | None = None  # None: nothing to fake (it runs locally)
    # A kind of self-hosted server: builds one provider per Backend of this kind in the operator's
    # catalog (``build`` then usually returns None: nothing is configured by environment alone).
    backend: Callable[[Backend, BuildContext], Provider] | None = None
    # A kind whose backends run ComfyUI workflows (pixelpipe.workflows): the models of the
    # catalog file with a ``workflow`` may name its backends, and only such models may.
    runs_workflows: bool = False
    # A kind whose backends take image inputs (edits, issue 16): the catalog file's check of a
    # model with inputs on one of its backends (its options, the model's claims) -> what to fix,
    # or None. Without it, a model with inputs on a backend of this kind is refused at load.
    image_inputs: InputCheck | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"provider name {self.name!r} must be lower-case letters and digits")
        if not isinstance(self.output_hosts, OutputHosts):
            raise ConfigError(
                f"provider {self.name} has no output hosts: give its ProviderRegistration "
                "output_hosts=OutputHosts((...)) naming where its images may be downloaded from "
                "(an empty tuple allows any public host)"
            )

    def build_provider(self, ctx: BuildContext) -> Provider | None:
        return self.build(ctx.settings.section(self.settings), ctx)

    def allowed_hosts(self, settings: Settings) -> tuple[str, ...]:
        """Its allowlist; in test mode with the host of its (fake) base URL added."""
        field = self.output_hosts.test_mode_base_url
        if not (settings.test_mode and field):
            return self.output_hosts.hosts
        host = urlsplit(str(getattr(settings.section(self.settings), field))).hostname
        return (*self.output_hosts.hosts, host) if host else self.output_hosts.hosts


def _timeout(seconds: float | None, default: httpx.Timeout) -> httpx.Timeout:
    """``seconds`` for the whole call (connecting in at most 5 s), or ``default`` when unset."""
    if seconds is None:
        return default
    return httpx.Timeout(seconds, connect=min(5.0, seconds))


def check_base_url(url: str, variable: str, *, test_mode: bool) -> str:
    """``url`` if it is https (or http to loopback / in test mode); ConfigError otherwise.

    Plain ``http://`` is accepted only for loopback hosts or with ``PIXELPIPE_TEST_MODE=true``, so
    that a key is never sent in clear text by accident.
    """
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
