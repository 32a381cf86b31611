"""Request dependencies: the services and the authenticated actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shipyard.domain.auth import Actor
from shipyard.services import tokens
from shipyard.services.context import Services

_bearer = HTTPBearer(auto_error=False, description="an API token (shy_...)")


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def actor(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    return tokens.authenticate(services(request), creds.credentials if creds else None)


Svc = Annotated[Services, Depends(services)]
Me = Annotated[Actor, Depends(actor)]
