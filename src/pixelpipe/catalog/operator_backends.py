"""``[backends.<name>]`` of the operator's catalog file, checked one key at a time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from pixelpipe.catalog.operator_lines import FileLines, number
from pixelpipe.catalog.operator_spec import BackendSpec

BACKEND_KEYS = ("kind", "url", "api_key_env", "slots", "usd_per_gpu_hour", "timeout_s", "options")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_NAME = 32  # the ledger's provider column


class BackendReader(FileLines):
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
        if not number(usd) or usd < 0:
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
        if not number(seconds) or seconds <= 0:
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
