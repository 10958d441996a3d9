"""Annotated dependencies: the adapters get services from app state, never from globals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pixelpipe.api.middleware import BODY_KEY
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs plain ``def`` dependencies in a thread pool."""
    svc: Services = request.app.state.services
    return svc


async def get_caller(request: Request) -> Caller:
    auth = getattr(request.app.state, "auth", None)
    if auth is None:
        return Caller()
    caller: Caller = await auth.authenticate(request)
    return caller


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]


async def request_body(request: Request) -> bytes:
    """The body, as the input-limits middleware already read it (else from the stream)."""
    body = request.scope.get(BODY_KEY)
    return body if isinstance(body, bytes) else await request.body()
