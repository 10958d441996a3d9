"""A change to the route reaches the fast lane: it honours it, or stands aside for the route.

Each test puts a changed ``POST /v1/generations`` in front of the real one (FastAPI dispatches to
the first route that matches, and so does the lane's plan) — an extra header, a dependency, a
constraint, a query parameter, a response model — and checks what the lane makes of it, then
that both servers still answer alike.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.routing import APIRoute

from pixelpipe.api import routes_generations, routes_openai
from pixelpipe.api.app import create_app
from pixelpipe.api.deps import CallerDep, ServicesDep
from pixelpipe.api.fast_lane import HOT_POSTS
from pixelpipe.api.lane_plan import LanePlan, StandAside, plan_lane
from pixelpipe.api.schemas import GenerationPublic
from pixelpipe.errors import Forbidden
from pixelpipe.intake import GenerationRequest
from pixelpipe.settings import Settings
from tests.api_parity.conftest import pair
from tests.api_parity.test_corpus import JSON, _assert_rendered_by_the_route_model

GEN = "/v1/generations"
BODY = {"prompt": "a lighthouse at dusk", "seed": 7, "size": "64x64"}
create_generation = routes_generations.create_generation


def in_front(endpoint: Callable[..., Any], **route: Any) -> Callable[[FastAPI], None]:
    """A change for :func:`pair`: ``endpoint`` answers POST /v1/generations before the real one."""

    def change(app: FastAPI) -> None:
        new = APIRoute(GEN, endpoint, methods=["POST"], dependency_overrides_provider=app, **route)
        app.router.routes.insert(0, new)

    return change


def planned(tmp_path: Path, change: Callable[[FastAPI], None]) -> LanePlan | StandAside:
    app = create_app(Settings(data_dir=tmp_path / "plan", log_level="WARNING"), worker=False)
    change(app)
    return plan_lane(app, GEN)


def stands_aside(plan: LanePlan | StandAside, *words: str) -> bool:
    return isinstance(plan, StandAside) and all(
        any(w in reason for reason in plan.reasons) for w in words
    )


# ---- the shipped routes ---------------------------------------------------------------------


def test_the_lane_serves_the_shipped_hot_posts(tmp_path: Path) -> None:
    """Fails when a change to either route makes the lane stand aside (a silent slowdown):
    teach the plan the new thing, or accept the slower route knowingly by editing this test."""
    app = create_app(Settings(data_dir=tmp_path, log_level="WARNING"), worker=False)
    plans = {path: plan_lane(app, path) for path in HOT_POSTS}
    gen, openai = plans["/v1/generations"], plans["/v1/images/generations"]
    assert isinstance(gen, LanePlan), gen
    assert isinstance(openai, LanePlan), openai
    assert gen.endpoint is routes_generations.create_generation
    assert openai.endpoint is routes_openai.create_images
    (key,) = gen.headers  # derived from Header(max_length=255), not copied
    assert (key.name, key.max_length, key.required) == ("idempotency-key", 255, False)
    assert gen.body is not None and gen.body.model is GenerationRequest
    assert gen.body.json_without_content_type is False  # FastAPI's strict content type
    assert [names for _, names in gen.dependencies] == [("svc",), ("caller",)]


# ---- headers --------------------------------------------------------------------------------


async def test_an_added_text_header_is_read_and_passed_on(tmp_path: Path) -> None:
    async def tenant_route(
        body: GenerationRequest,
        request: Request,
        svc: ServicesDep,
        caller: CallerDep,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
        x_tenant: Annotated[str | None, Header(min_length=2, max_length=8)] = None,
    ) -> Response:
        response = await create_generation(body, request, svc, caller, idempotency_key)
        response.headers["x-seen-tenant"] = repr(x_tenant)
        return response

    plan = planned(tmp_path, in_front(tenant_route))
    assert isinstance(plan, LanePlan)
    assert [(r.name, r.min_length, r.max_length) for r in plan.headers] == [
        ("idempotency-key", None, 255),
        ("x-tenant", 2, 8),
    ]
    async with pair(tmp_path, change=in_front(tenant_route)) as p:
        for tenant in (None, "", "a", "ab", "abcdefgh", "abcdefghi"):
            headers = {**JSON} if tenant is None else {**JSON, "x-tenant": tenant}
            answer = await p.post(GEN, BODY, headers=headers)
            assert answer.by_lane == (tenant in (None, "ab", "abcdefgh")), tenant
            if answer.by_lane:
                assert answer.header("x-seen-tenant") == repr(tenant).encode()


@pytest.mark.parametrize(
    "header",
    [
        Annotated[int | None, Header()],
        Annotated[str | None, Header(pattern="^[a-z]+$")],
        Annotated[list[str] | None, Header()],
        Annotated[str | None, Header(alias="X_Weird", convert_underscores=False)],
    ],
    ids=["int", "pattern", "list", "alias"],
)
async def test_a_header_the_lane_cannot_check_makes_it_stand_aside(
    tmp_path: Path, header: Any
) -> None:
    async def route(**kw: Any) -> Response:
        return await create_generation(kw["body"], kw["request"], kw["svc"], kw["caller"], None)

    params = [
        *(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)
            for name, annotation in (
                ("body", GenerationRequest),
                ("request", Request),
                ("svc", ServicesDep),
                ("caller", CallerDep),
            )
        ),
        inspect.Parameter("x_tenant", inspect.Parameter.KEYWORD_ONLY, annotation=header),
    ]
    route.__signature__ = inspect.Signature(params, return_annotation=Response)  # type: ignore[attr-defined]
    plan = planned(tmp_path, in_front(route))
    if isinstance(plan, LanePlan):  # honoured: then it must read it exactly as FastAPI does
        async with pair(tmp_path, change=in_front(route)) as p:
            for value in (None, "abc", "ABC", "12", "a,b"):
                headers = {**JSON} if value is None else {**JSON, "x-tenant": value}
                await p.post(GEN, BODY, headers=headers)
    else:
        assert stands_aside(plan, "header"), plan
        async with pair(tmp_path, change=in_front(route)) as p:
            answer = await p.post(GEN, BODY, headers={**JSON, "x-tenant": "12"})
            assert not answer.by_lane


# ---- dependencies ---------------------------------------------------------------------------


async def refuse_blocked(request: Request) -> None:
    if request.headers.get("x-blocked"):
        raise Forbidden("blocked by a route dependency")


async def test_an_added_async_dependency_runs_in_the_lane(tmp_path: Path) -> None:
    change = in_front(create_generation, dependencies=[Depends(refuse_blocked)])
    plan = planned(tmp_path, change)
    assert isinstance(plan, LanePlan)
    assert plan.dependencies[0] == (refuse_blocked, ())
    async with pair(tmp_path, change=change) as p:
        refused = await p.post(GEN, BODY, headers={**JSON, "x-blocked": "1"})
        assert refused.status == 403 and refused.by_lane
        assert (await p.post(GEN, BODY)).by_lane


async def test_a_dependency_of_an_included_router_runs_in_the_lane(tmp_path: Path) -> None:
    from fastapi import APIRouter

    def change(app: FastAPI) -> None:
        router = APIRouter(dependencies=[Depends(refuse_blocked)])
        router.add_api_route(GEN, create_generation, methods=["POST"])
        app.include_router(router)
        app.router.routes.insert(0, app.router.routes.pop())

    async with pair(tmp_path, change=change) as p:
        refused = await p.post(GEN, BODY, headers={**JSON, "x-blocked": "1"})
        assert refused.status == 403 and refused.by_lane


def sync_dependency(request: Request) -> None:
    return None


async def yielding_dependency(request: Request) -> Any:
    yield None


async def dependency_with_a_header(x_tenant: Annotated[str, Header()]) -> str:
    return x_tenant


class CallableDependency:
    async def __call__(self, request: Request) -> None:
        return None


@pytest.mark.parametrize(
    ("dependency", "why"),
    [
        (sync_dependency, "not an async function"),
        (yielding_dependency, "not an async function"),
        (dependency_with_a_header, "takes more than the request"),
        (CallableDependency(), "not an async function"),
    ],
)
async def test_a_dependency_the_lane_cannot_call_makes_it_stand_aside(
    tmp_path: Path, dependency: Any, why: str
) -> None:
    change = in_front(create_generation, dependencies=[Depends(dependency)])
    assert stands_aside(planned(tmp_path, change), why)
    async with pair(tmp_path, change=change) as p:
        answer = await p.post(GEN, BODY, headers={**JSON, "x-tenant": "t"})
        assert answer.status == 202 and not answer.by_lane


async def test_an_overridden_dependency_sends_requests_to_the_route(tmp_path: Path) -> None:
    async def no_services() -> None:
        raise Forbidden("overridden")

    def change(app: FastAPI) -> None:
        app.dependency_overrides[refuse_blocked] = no_services
        in_front(create_generation, dependencies=[Depends(refuse_blocked)])(app)

    async with pair(tmp_path, change=change) as p:
        answer = await p.post(GEN, BODY)
        assert answer.status == 403 and not answer.by_lane


# ---- the rest of the route --------------------------------------------------------------------


async def with_query(
    body: GenerationRequest,
    request: Request,
    svc: ServicesDep,
    caller: CallerDep,
    dry: Annotated[bool, Query()] = False,
) -> Response:
    return await create_generation(body, request, svc, caller, None)


async def with_response(
    body: GenerationRequest, request: Request, svc: ServicesDep, caller: CallerDep, r: Response
) -> Response:
    r.headers["x-extra"] = "1"
    return await create_generation(body, request, svc, caller, None)


async def returning_a_model(
    body: GenerationRequest, request: Request, svc: ServicesDep, caller: CallerDep
) -> GenerationPublic:
    raise AssertionError("not called")


async def two_bodies(
    body: GenerationRequest, other: GenerationRequest, request: Request, svc: ServicesDep
) -> Response:
    raise AssertionError("not called")


class LoggingRoute(APIRoute):
    pass


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (in_front(with_query), "query_params"),
        (in_front(with_response), "response_param_name"),
        (in_front(returning_a_model), "does not return a Response"),
        (in_front(two_bodies), "more than one body"),
        (in_front(create_generation, response_class=Response), None),
    ],
    ids=["query", "response-param", "model-return", "two-bodies", "response-class"],
)
async def test_what_the_plan_cannot_express_is_left_to_the_route(
    tmp_path: Path, change: Callable[[FastAPI], None], why: str | None
) -> None:
    plan = planned(tmp_path, change)
    if why is None:
        assert isinstance(plan, LanePlan)  # a Response the endpoint builds: no serialisation
    else:
        assert stands_aside(plan, why), plan
        async with pair(tmp_path, change=change) as p:
            assert not (await p.post(GEN, BODY)).by_lane


def test_a_custom_route_class_is_left_to_the_route(tmp_path: Path) -> None:
    def change(app: FastAPI) -> None:
        app.router.routes.insert(
            0, LoggingRoute(GEN, create_generation, methods=["POST"], response_model=None)
        )

    assert stands_aside(planned(tmp_path, change), "LoggingRoute")


async def test_a_lenient_content_type_is_followed(tmp_path: Path) -> None:
    change = in_front(create_generation, strict_content_type=False)
    plan = planned(tmp_path, change)
    assert isinstance(plan, LanePlan) and plan.body is not None
    assert plan.body.json_without_content_type
    async with pair(tmp_path, change=change) as p:
        raw = b'{"prompt": "a fox", "seed": 1, "size": "64x64"}'
        answer = await p.post(GEN, raw, headers={})
        assert answer.status == 202 and answer.by_lane


async def test_a_field_added_to_the_response_model_and_not_rendered_fails_the_corpus(
    tmp_path: Path,
) -> None:
    class GenerationWithTags(GenerationPublic):
        tags: list[str] = []

    change = in_front(create_generation, response_model=GenerationWithTags, status_code=202)
    async with pair(tmp_path, change=change) as p:
        answer = await p.post(GEN, BODY)
        assert answer.by_lane
        with pytest.raises(AssertionError):
            _assert_rendered_by_the_route_model(p.lane, answer)


async def test_an_unhandled_error_is_answered_as_the_route_answers_it(tmp_path: Path) -> None:
    async def broken(body: GenerationRequest, request: Request) -> Response:
        raise RuntimeError("a bug")

    async with pair(tmp_path, change=in_front(broken)) as p:
        answer = await p.post(GEN, BODY)
        assert answer.status == 500 and answer.by_lane


async def test_standing_aside_is_warned_once_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    change = in_front(with_query)
    with caplog.at_level(logging.WARNING, logger="pixelpipe.api.fast_lane"):
        async with pair(tmp_path, change=change) as p:
            for _ in range(3):
                await p.post(GEN, BODY)
    warnings = [r for r in caplog.records if r.name == "pixelpipe.api.fast_lane"]
    assert len(warnings) == 1 and "query_params" in warnings[0].getMessage()
