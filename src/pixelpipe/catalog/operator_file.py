"""The operator's catalog file (``PIXELPIPE_CATALOG_PATH``): self-hosted backends and models.

A TOML file with ``[backends.<name>]`` (one model server each: its kind, URL, credential variable,
slots and price per GPU-hour, the kind's own keys under ``options``) and ``[models.<name>]`` (a
new model, or one that ``extends`` a built-in model, served by ``backends`` in failover order,
self-hosted and hosted mixed). Read and checked once at start; anything wrong is a
:class:`~pixelpipe.errors.ConfigError` naming the file, the line and the fix. The catalog sits
below the providers, so what it checks against (the kinds, the hosted providers, the
environment) is handed in. See docs/self-hosted.md.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pixelpipe.errors import ConfigError

BACKEND_KEYS = ("kind", "url", "api_key_env", "slots", "usd_per_gpu_hour", "timeout_s", "options")
SPEC_KEYS = (
    "label",
    "description",
    "position",
    "typical_latency_s",
    "formats",
    "default_format",
    "aspect_ratios",
    "custom_size",
    "steps",
    "guidance",
    "qualities",
    "default_quality",
    "negative_prompt",
    "max_n",
)
MODEL_KEYS = ("extends", "backends", "ids", *SPEC_KEYS)
NEW_MODEL_NEEDS = ("label", "formats", "aspect_ratios")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_NAME = 32  # the ledger's provider column


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One ``[backends.<name>]`` table, checked (the credential read from its variable)."""

    name: str
    kind: str
    url: str
    api_key: str = ""
    slots: int = 1
    usd_per_gpu_hour: Decimal | None = None
    timeout_s: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # "catalog.toml:12"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One ``[models.<name>]`` table: the spec keys it sets, what it extends, who serves it."""

    name: str
    extends: str | None
    spec: Mapping[str, Any]  # the keys of SPEC_KEYS it sets
    providers: tuple[str, ...] | None  # failover order; None: the extended model's
    ids: Mapping[str, str]  # provider -> that provider's id for the model
    source: str


@dataclass(frozen=True, slots=True)
class OperatorFile:
    path: str
    backends: tuple[BackendSpec, ...]
    models: tuple[ModelEntry, ...]

    def backend_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.backends)


@dataclass(frozen=True, slots=True)
class Known:
    """What the file is checked against: installed kinds, hosted providers and their model ids
    (provider -> model -> id), built-in model names, and the environment (credentials)."""

    kinds: Collection[str]
    hosted: Mapping[str, Mapping[str, str]]
    models: Collection[str]
    env: Mapping[str, str]


def load_operator_file(path: Path, known: Known) -> OperatorFile:
    """The checked file at ``path``; ConfigError naming the file, the line and the fix."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"PIXELPIPE_CATALOG_PATH={path}: the catalog file cannot be read ({exc.strerror}); "
            "point PIXELPIPE_CATALOG_PATH at an existing TOML file or unset it"
        ) from None
    return _Reader(str(path), text, known).read()


class _Reader:
    def __init__(self, path: str, text: str, known: Known) -> None:
        self.path, self.text, self.known = path, text, known
        self.lines = text.splitlines()

    # --- errors with a line ---------------------------------------------------------------
    def fail(self, line: int, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {message}")

    def line_of(self, table: str, name: str, key: str | None = None) -> int:
        """The line of ``[table.name]`` (or of ``key`` inside it); 1 when it cannot be found."""
        header = re.compile(
            rf"^\s*\[\s*{table}\s*\.\s*(\"{re.escape(name)}\"|'{re.escape(name)}'|"
            rf"{re.escape(name)})\s*(\.|\])"
        )
        start = next((i for i, line in enumerate(self.lines) if header.match(line)), None)
        if start is None:
            return 1
        if key is None:
            return start + 1
        key_line = re.compile(rf"^\s*(\"{re.escape(key)}\"|{re.escape(key)})\s*[=.]")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if key_line.match(self.lines[i]):
                return i + 1
        return start + 1

    # --- the file -------------------------------------------------------------------------
    def read(self) -> OperatorFile:
        try:
            raw = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"line (\d+)", str(exc))
            raise self.fail(
                int(found.group(1)) if found else 1,
                f"not valid TOML ({exc}); fix the syntax (https://toml.io)",
            ) from None
        for key in raw:
            if key not in ("backends", "models"):
                raise self.fail(
                    _top_line(self.lines, key),
                    f"unknown top-level key {key!r}: the file has [backends.<name>] and "
                    "[models.<name>] tables only",
                )
        backends = tuple(
            self.backend(name, entry) for name, entry in self.tables(raw, "backends").items()
        )
        names = {b.name for b in backends}
        models = tuple(
            self.model(name, entry, names) for name, entry in self.tables(raw, "models").items()
        )
        return OperatorFile(self.path, backends, models)

    def tables(self, raw: Mapping[str, Any], table: str) -> dict[str, Mapping[str, Any]]:
        found = raw.get(table, {})
        if not isinstance(found, dict):
            raise self.fail(
                _top_line(self.lines, table), f"{table} must be [{table}.<name>] tables"
            )
        for name, entry in found.items():
            if not isinstance(entry, dict):
                raise self.fail(
                    _top_line(self.lines, table), f"{table}.{name} must be a [{table}.{name}] table"
                )
        return found

    # --- backends -------------------------------------------------------------------------
    def backend(self, name: str, raw: Mapping[str, Any]) -> BackendSpec:
        at = self.line_of("backends", name)
        if not _NAME.match(name) or len(name) > _MAX_NAME:
            raise self.fail(
                at,
                f"backend name {name!r} must be lower-case letters, digits and _ (starting with a "
                f"letter, at most {_MAX_NAME}): it is a provider name (in the ledger, "
                "PIXELPIPE_PROVIDER_ORDER)",
            )
        if name in self.known.hosted or name in self.known.kinds:
            raise self.fail(
                at,
                f"backend name {name!r} is the name of a built-in provider: give the backend "
                "another name (e.g. gpu_a)",
            )
        self.unknown_keys(
            "backends", name, raw, BACKEND_KEYS, f"kind options go under [backends.{name}.options]"
        )
        return BackendSpec(
            name=name,
            kind=self.kind(name, raw),
            url=self.url(name, raw),
            api_key=self.api_key(name, raw),
            slots=self.slots(name, raw),
            usd_per_gpu_hour=self.price(name, raw),
            timeout_s=self.timeout(name, raw),
            options=self.options(name, raw),
            source=f"{self.path}:{at}",
        )

    def unknown_keys(
        self, table: str, name: str, raw: Mapping[str, Any], allowed: tuple[str, ...], hint: str
    ) -> None:
        for key in raw:
            if key not in allowed:
                raise self.fail(
                    self.line_of(table, name, key),
                    f"unknown key {key!r} in [{table}.{name}]: use {', '.join(allowed)} ({hint})",
                )

    def kind(self, name: str, raw: Mapping[str, Any]) -> str:
        kinds = sorted(self.known.kinds)
        listed = ", ".join(kinds) if kinds else "none is installed"
        if "kind" not in raw:
            raise self.fail(
                self.line_of("backends", name),
                f'[backends.{name}] has no kind: add kind = "<kind>" (installed kinds: {listed})',
            )
        kind = raw["kind"]
        if kind not in kinds:
            raise self.fail(
                self.line_of("backends", name, "kind"),
                f"backend {name}: unknown kind {kind!r}; use one of the installed kinds: {listed}",
            )
        return str(kind)

    def url(self, name: str, raw: Mapping[str, Any]) -> str:
        if "url" not in raw:
            raise self.fail(
                self.line_of("backends", name),
                f'[backends.{name}] has no url: add url = "http://host:port" (the server\'s '
                "base URL)",
            )
        url = raw["url"]
        parts = urlsplit(url) if isinstance(url, str) else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
        if not ok or parts is None or parts.query or parts.fragment or parts.username:
            raise self.fail(
                self.line_of("backends", name, "url"),
                f"backend {name}: url {url!r} is not a base URL; write it as http://host:port "
                "or https://host[/path] (no query, fragment or credentials: the key goes in the "
                "variable api_key_env names)",
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise self.fail(
                self.line_of("backends", name, "url"), f"backend {name}: url {url!r} has a bad port"
            ) from None
        return str(url).rstrip("/")

    def api_key(self, name: str, raw: Mapping[str, Any]) -> str:
        variable = raw.get("api_key_env")
        if variable is None:
            return ""
        line = self.line_of("backends", name, "api_key_env")
        if not isinstance(variable, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", variable):
            raise self.fail(
                line,
                f"backend {name}: api_key_env must be the NAME of an environment variable "
                'holding the key (e.g. "GPU_A_KEY"), never the key itself',
            )
        value = self.known.env.get(variable, "")
        if not value:
            raise self.fail(
                line,
                f"backend {name}: api_key_env names {variable}, which is not set: export "
                f"{variable}=<the key> before starting (or remove api_key_env if the server "
                "needs no key)",
            )
        return value

    def slots(self, name: str, raw: Mapping[str, Any]) -> int:
        slots = raw.get("slots", 1)
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise self.fail(
                self.line_of("backends", name, "slots"),
                f"backend {name}: slots = {slots!r}; it must be a whole number ≥ 1 (how many "
                "runs the server takes at once)",
            )
        return slots

    def price(self, name: str, raw: Mapping[str, Any]) -> Decimal | None:
        if "usd_per_gpu_hour" not in raw:
            return None
        usd = raw["usd_per_gpu_hour"]
        if not _number(usd) or usd < 0:
            raise self.fail(
                self.line_of("backends", name, "usd_per_gpu_hour"),
                f"backend {name}: usd_per_gpu_hour = {usd!r}; it must be a number ≥ 0 (US "
                "dollars per GPU-hour; 0 for free, leave it out for unpriced)",
            )
        return Decimal(str(usd))

    def timeout(self, name: str, raw: Mapping[str, Any]) -> float | None:
        if "timeout_s" not in raw:
            return None
        seconds = raw["timeout_s"]
        if not _number(seconds) or seconds <= 0:
            raise self.fail(
                self.line_of("backends", name, "timeout_s"),
                f"backend {name}: timeout_s = {seconds!r}; it must be a number of seconds > 0",
            )
        return float(seconds)

    def options(self, name: str, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        options = raw.get("options", {})
        if not isinstance(options, dict):
            raise self.fail(
                self.line_of("backends", name, "options"),
                f"backend {name}: options must be a table ([backends.{name}.options])",
            )
        return dict(options)

    # --- models ---------------------------------------------------------------------------
    def model(self, name: str, raw: Mapping[str, Any], backends: set[str]) -> ModelEntry:
        at = self.line_of("models", name)
        self.unknown_keys("models", name, raw, MODEL_KEYS, "the keys of pixelpipe's catalog")
        extends = self.extends(name, raw)
        if extends is None:
            missing = [k for k in NEW_MODEL_NEEDS if k not in raw]
            if missing:
                raise self.fail(
                    at,
                    f"model {name} is new and has no {', '.join(missing)}: give them, or "
                    'extends = "<built-in model>" to inherit its label and limits',
                )
        ids = self.ids(name, raw)
        providers = self.providers(name, raw, backends, extends, ids)
        spec = {k: v for k, v in raw.items() if k in SPEC_KEYS}
        return ModelEntry(name, extends, spec, providers, ids, f"{self.path}:{at}")

    def extends(self, name: str, raw: Mapping[str, Any]) -> str | None:
        if "extends" not in raw:
            return name if name in self.known.models else None  # a built-in model's name: itself
        base = raw["extends"]
        if base not in self.known.models:
            raise self.fail(
                self.line_of("models", name, "extends"),
                f"model {name}: extends = {base!r} is not a built-in model; use one of: "
                f"{', '.join(sorted(self.known.models))}",
            )
        return str(base)

    def ids(self, name: str, raw: Mapping[str, Any]) -> dict[str, str]:
        ids = raw.get("ids", {})
        bad = not isinstance(ids, dict) or any(not isinstance(v, str) for v in ids.values())
        if bad:
            raise self.fail(
                self.line_of("models", name, "ids"),
                f"model {name}: ids must be a table of strings ([models.{name}.ids] "
                'gpu_a = "<the model\'s id on gpu_a>")',
            )
        return dict(ids)

    def providers(
        self,
        name: str,
        raw: Mapping[str, Any],
        backends: set[str],
        extends: str | None,
        ids: Mapping[str, str],
    ) -> tuple[str, ...] | None:
        listed = raw.get("backends")
        line = self.line_of("models", name, "backends")
        if listed is None:
            if extends is None:
                raise self.fail(
                    self.line_of("models", name),
                    f'model {name} lists no backends: add backends = ["<backend>", ...] '
                    "(failover order; self-hosted backends and hosted providers)",
                )
            return None
        if (
            not isinstance(listed, list)
            or not listed
            or any(not isinstance(b, str) for b in listed)
        ):
            raise self.fail(
                line, f"model {name}: backends must be a non-empty list of names, in failover order"
            )
        if len(set(listed)) != len(listed):
            raise self.fail(line, f"model {name}: backends lists a name twice")
        for provider in listed:
            self.check_provider(name, provider, backends, extends, ids, line)
        for provider in ids:
            if provider not in listed:
                raise self.fail(
                    self.line_of("models", name, "ids"),
                    f"model {name}: ids names {provider!r}, which its backends do not list",
                )
        return tuple(listed)

    def check_provider(
        self,
        name: str,
        provider: str,
        backends: set[str],
        extends: str | None,
        ids: Mapping[str, str],
        line: int,
    ) -> None:
        if provider in backends:
            return
        hosted = self.known.hosted.get(provider)
        if hosted is None:
            known = sorted(backends) + sorted(self.known.hosted)
            raise self.fail(
                line,
                f"model {name}: backends names {provider!r}, which is neither a backend of this "
                f"file nor a provider; use one of: {', '.join(known)}",
            )
        if provider not in ids and (extends is None or extends not in hosted):
            raise self.fail(
                line,
                f"model {name}: {provider} has no id for it ({provider} serves "
                f"{', '.join(sorted(hosted)) or 'no model'}); extend one of those models, or "
                f'give its id under [models.{name}.ids] {provider} = "<its model id>"',
            )


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _top_line(lines: list[str], key: str) -> int:
    pattern = re.compile(rf"^\s*(\[+\s*)?{re.escape(key)}\b")
    return next((i + 1 for i, line in enumerate(lines) if pattern.match(line)), 1)
