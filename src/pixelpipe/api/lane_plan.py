"""What the fast lane may answer, derived from the FastAPI route itself when the app starts.

:mod:`pixelpipe.api.fast_lane` answers a hot POST without FastAPI's per-request machinery, so it
must do exactly what the route would. Nothing about the route is copied by hand: :func:`plan_lane`
finds the route FastAPI would dispatch the request to and reads its definition — header
parameters and their constraints, dependencies, body model, content-type strictness, body size
limit, endpoint — into a :class:`LanePlan` the lane follows. Whatever the plan cannot express
(a query or cookie parameter, a header that is not plain text, a constraint other than a length,
a sync / ``yield`` / parametrised dependency, an endpoint that returns a model for FastAPI to
serialise, a custom route class, …) makes it a :class:`StandAside` with the reasons: the lane then
passes every request for that path to the route.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from pixelpipe.api.lane_headers import HeaderRule, header_rules

Endpoint: TypeAlias = Callable[..., Awaitable[Response]]
Dependency: TypeAlias = Callable[[Request], Awaitable[Any]]

# the Dependant fields the plan understands; one it does not know (a newer FastAPI) that is set
# makes the lane stand aside rather than skip it
_EMPTY_SUB_DEPENDANT_FIELDS = (
    "path_params",
    "query_params",
    "header_params",
    "cookie_params",
    "body_params",
    "dependencies",
    "websocket_param_name",
    "http_connection_param_name",
    "response_param_name",
    "background_tasks_param_name",
    "security_scopes_param_name",
    "own_oauth_scopes",
    "parent_oauth_scopes",
    "concurrency",
)
# a route may take headers, a body and dependencies (the lane reads them), nothing else
_ROUTE_INPUTS = frozenset({"header_params", "body_params", "dependencies"})
_UNSUPPORTED_ROUTE_FIELDS = tuple(
    name for name in _EMPTY_SUB_DEPENDANT_FIELDS if name not in _ROUTE_INPUTS
)
_HANDLED_FIELDS = frozenset(
    (
        *_EMPTY_SUB_DEPENDANT_FIELDS,
        "header_params",
        "body_params",
        "dependencies",
        "name",
        "call",
        "request_param_name",
        "use_cache",
        "path",
        "scope",
    )
)


@dataclass(frozen=True, slots=True)
class BodyRule:
    """The route's one JSON body: a pydantic model."""

    param: str
    model: type[BaseModel]
    json_without_content_type: bool  # the route's strict_content_type, inverted
    max_bytes: int | None  # the route's max_body_size: at or above it the route answers


@dataclass(frozen=True, slots=True)
class LanePlan:
    path: str
    route: APIRoute
    endpoint: Endpoint
    headers: tuple[HeaderRule, ...]
    body: BodyRule | None
    dependencies: tuple[tuple[Dependency, tuple[str, ...]], ...]  # call, parameter names
    request_param: str | None
    overrides: Any  # the dependency_overrides_provider: the route answers while it overrides


@dataclass(frozen=True, slots=True)
class StandAside:
    path: str
    reasons: tuple[str, ...]


def plan_lane(app: FastAPI, path: str, method: str = "POST") -> LanePlan | StandAside:
    """How the lane answers ``method path`` as the route FastAPI dispatches it to would."""
    ctx = dispatched_route(app, path, method)
    if ctx is None:
        return StandAside(path, ("no route answers it",))
    route = ctx.original_route
    if type(route) is not APIRoute:
        return StandAside(path, (f"its route is a {type(route).__name__}, not a plain APIRoute",))
    dependant: Dependant = ctx.dependant
    headers, header_reasons = header_rules(dependant.header_params)
    body, body_reasons = _body_rule(dependant.body_params, ctx)
    dependencies, dependency_reasons = _dependency_steps(dependant.dependencies)
    reasons = [
        *_route_reasons(dependant, ctx),
        *header_reasons,
        *body_reasons,
        *dependency_reasons,
    ]
    if reasons:
        return StandAside(path, tuple(reasons))
    return LanePlan(
        path=path,
        route=route,
        endpoint=ctx.endpoint,
        headers=headers,
        body=body,
        dependencies=dependencies,
        request_param=dependant.request_param_name,
        overrides=ctx.dependency_overrides_provider,
    )


def dispatched_route(app: FastAPI, path: str, method: str) -> Any:
    """The (effective) route FastAPI's router sends ``method path`` to: the first full match."""
    for ctx in iter_route_contexts(app.router.routes):
        probe = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
        match, _ = ctx.matches(probe)
        if match is Match.FULL:
            return ctx
    return None


def _route_reasons(dependant: Dependant, ctx: Any) -> list[str]:
    reasons = [f"{name} is set" for name in _UNSUPPORTED_ROUTE_FIELDS if getattr(dependant, name)]
    reasons += _unknown_fields(dependant, "the route")
    endpoint = ctx.endpoint
    if dependant.call is not endpoint or not inspect.iscoroutinefunction(endpoint):
        reasons.append("its endpoint is not an async function")
    elif not _returns_response(endpoint):
        reasons.append("its endpoint does not return a Response (FastAPI would serialise it)")
    if getattr(ctx, "is_sse_stream", False) or getattr(ctx, "is_json_stream", False):
        reasons.append("it streams")
    return reasons


def _unknown_fields(dependant: Dependant, what: str) -> list[str]:
    return [
        f"{what} sets {f.name}, unknown to the lane"
        for f in dataclasses.fields(dependant)
        if f.name not in _HANDLED_FIELDS and getattr(dependant, f.name)
    ]


def _returns_response(endpoint: Endpoint) -> bool:
    try:
        returned = inspect.signature(endpoint, eval_str=True).return_annotation
    except (NameError, TypeError):
        return False
    return inspect.isclass(returned) and issubclass(returned, Response)


# ---- body ----------------------------------------------------------------------------------


def _body_rule(fields: Sequence[Any], ctx: Any) -> tuple[BodyRule | None, list[str]]:
    if not fields:
        return None, []
    if len(fields) > 1:
        return None, ["more than one body parameter"]
    field = fields[0]
    info = field.field_info
    model = info.annotation
    if type(info) is not params.Body or info.embed or info.metadata:
        return None, [f"its body {field.name!r} is not a plain JSON body"]
    if not (inspect.isclass(model) and issubclass(model, BaseModel)):
        return None, [f"its body {field.name!r} is not a pydantic model"]
    strict = ctx.strict_content_type
    strict = getattr(strict, "value", strict)  # FastAPI's DefaultPlaceholder or the bool
    rule = BodyRule(
        param=field.name,
        model=model,
        json_without_content_type=not strict,
        max_bytes=getattr(ctx, "max_body_size", None),
    )
    return rule, []


# ---- dependencies --------------------------------------------------------------------------


def _dependency_steps(
    subs: Sequence[Dependant],
) -> tuple[tuple[tuple[Dependency, tuple[str, ...]], ...], list[str]]:
    """The dependencies in FastAPI's order, each called once (FastAPI's per-request cache)."""
    steps: dict[Any, list[str]] = {}
    reasons: list[str] = []
    for sub in subs:
        why = _why_not_plain(sub)
        if why:
            reasons.append(f"dependency {getattr(sub.call, '__name__', sub.call)!r}: {why}")
            continue
        names = steps.setdefault(sub.call, [])
        if names and not sub.use_cache:
            reasons.append(f"dependency {sub.call!r} is asked twice, uncached")
        if sub.name:
            names.append(sub.name)
    return tuple((call, tuple(names)) for call, names in steps.items()), reasons


def _why_not_plain(sub: Dependant) -> str | None:
    """None for an async function of the request only (what the lane can call); else why not."""
    call = sub.call
    if not inspect.iscoroutinefunction(call):
        return "not an async function (sync, generator or callable object)"
    set_fields = [name for name in _EMPTY_SUB_DEPENDANT_FIELDS if getattr(sub, name)]
    set_fields += _unknown_fields(sub, "it")
    if set_fields:
        return f"takes more than the request ({', '.join(set_fields)})"
    parameters = list(inspect.signature(call).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if (
        sub.request_param_name is None
        or len(parameters) != 1
        or parameters[0].kind not in positional
    ):
        return "does not take exactly the request"
    return None
