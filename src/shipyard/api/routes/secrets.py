"""Secrets of a project environment: a value is accepted on write and never returned."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from shipyard.api.deps import Me, Svc
from shipyard.domain.secrets import MAX_VALUE, SecretInfo
from shipyard.services import secrets

router = APIRouter(prefix="/api/v1/projects/{project}/environments/{environment}", tags=["secrets"])

Name = Path(max_length=128, description="a variable name: letters, digits and _, not SHIPYARD_*")


class SecretIn(BaseModel):
    value: str = Field(max_length=MAX_VALUE, description="write-only: never shown again")


class SecretOut(BaseModel):
    """What anyone with read access may know of a secret: not its value."""

    name: str
    set_by: str
    set_at: datetime

    @classmethod
    def of(cls, s: SecretInfo) -> SecretOut:
        return cls(name=s.name, set_by=s.set_by, set_at=s.set_at)


@router.put("/secrets/{name}")
def set_secret(
    project: str, environment: str, body: SecretIn, svc: Svc, me: Me, name: str = Name
) -> SecretOut:
    """Set (or replace) a secret; its processes get it as ``NAME`` when they next start."""
    return SecretOut.of(secrets.set_secret(svc, me, project, environment, name, body.value))


@router.get("/secrets")
def list_secrets(project: str, environment: str, svc: Svc, me: Me) -> list[SecretOut]:
    return [SecretOut.of(s) for s in secrets.list_secrets(svc, me, project, environment)]


@router.delete("/secrets/{name}", status_code=204)
def remove_secret(project: str, environment: str, svc: Svc, me: Me, name: str = Name) -> None:
    secrets.remove_secret(svc, me, project, environment, name)
