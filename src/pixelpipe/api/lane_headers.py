"""The route's ``Header()`` parameters as rules the fast lane checks per request.

A rule is read from the parameter's FastAPI field (its header name, whether it is required, its
length constraints) and, before the lane uses it, checked against FastAPI's own parameter
validation on boundary values (absent, empty, at and past each limit, non-ASCII): a rule that
reads any of them otherwise is not used, and the lane stands aside for the route.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from annotated_types import MaxLen, MinLen
from fastapi import params
from fastapi.dependencies.utils import request_params_to_args
from starlette.datastructures import Headers

_TEXT = (str, str | None)
_LENGTHS = (MaxLen, MinLen)


@dataclass(frozen=True, slots=True)
class HeaderRule:
    """One ``Header()`` parameter of the route: a text value, at most a length constraint."""

    param: str
    name: str  # lower case, as Starlette's Headers look it up
    required: bool
    default: Any
    min_length: int | None
    max_length: int | None

    def read(self, headers: Headers) -> tuple[bool, Any]:
        """(valid, value) — what FastAPI would pass the endpoint, or (False, None)."""
        value = headers.get(self.name)
        if value is None:
            return (False, None) if self.required else (True, self.default)
        if self.max_length is not None and len(value) > self.max_length:
            return False, None
        if self.min_length is not None and len(value) < self.min_length:
            return False, None
        return True, value


def header_rules(fields: Sequence[Any]) -> tuple[tuple[HeaderRule, ...], list[str]]:
    rules: list[HeaderRule] = []
    reasons: list[str] = []
    for field in fields:
        rule = _header_rule(field)
        if isinstance(rule, str):
            reasons.append(f"header {field.alias!r}: {rule}")
        else:
            rules.append(rule)
    return tuple(rules), reasons


def _header_rule(field: Any) -> HeaderRule | str:
    info = field.field_info
    if type(info) is not params.Header:
        return f"a {type(info).__name__} parameter"
    if info.annotation not in _TEXT:
        return f"typed {info.annotation}, not text"
    unknown = [m for m in info.metadata if not isinstance(m, _LENGTHS)]
    if unknown:
        return f"constraints the lane does not check: {unknown}"
    if info.validation_alias is not None or info.validate_default:
        return "a validation alias or a validated default"
    required = info.is_required()
    if not required and info.default is not None:
        return "a default other than None"
    rule = HeaderRule(
        param=field.name,
        name=str(field.alias).lower(),
        required=required,
        default=None,
        min_length=next((m.min_length for m in info.metadata if isinstance(m, MinLen)), None),
        max_length=next((m.max_length for m in info.metadata if isinstance(m, MaxLen)), None),
    )
    return _agrees_with_fastapi(rule, field)


def _agrees_with_fastapi(rule: HeaderRule, field: Any) -> HeaderRule | str:
    """``rule`` if it reads boundary values as FastAPI's own parameter validation does."""
    for value in _probes(rule):
        raw = [] if value is None else [(rule.name.encode(), value.encode("latin-1"))]
        headers = Headers(raw=raw)
        values, errors = request_params_to_args([field], headers)
        ok, got = rule.read(headers)
        if ok != (not errors) or (ok and got != values.get(field.name)):
            return f"the lane would read {value!r} otherwise than FastAPI"
    return rule


def _probes(rule: HeaderRule) -> list[str | None]:
    probes: list[str | None] = [None, "", "k", " k ", "\xe9"]
    for n in (rule.min_length, rule.max_length):
        if n is not None:
            probes += ["k" * max(n - 1, 0), "k" * n, "k" * (n + 1), "\xe9" * (n + 1)]
    return probes
