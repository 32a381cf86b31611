"""Secrets of a project environment: set, listed by name, removed, and opened only at start.

A value goes in once and never comes back out through the API, the CLI or the audit log (its
event names the secret, never the value). It is sealed with the server's key before it reaches
the database, bound to its project, environment and name.
"""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.domain.auth import Action, Actor
from shipyard.domain.secrets import (
    ENVIRONMENT,
    MAX_VARIABLES,
    SecretInfo,
    check_name,
    secret_context,
    value_problem,
)
from shipyard.errors import InvalidError, NotFoundError
from shipyard.ports.repositories import UnitOfWork
from shipyard.services.context import Services
from shipyard.services.releases import get_project


def _environment(name: str) -> str:
    if not ENVIRONMENT.fullmatch(name):
        raise InvalidError(
            f"{name[:70]!r} is not an environment name (lowercase letters, digits, - and _)"
        )
    return name


def set_secret(
    svc: Services, actor: Actor, project: str, environment: str, name: str, value: str
) -> SecretInfo:
    actor.require(Action.DEPLOY, project=project, environment=environment)
    check_name(name, "secret")
    problem = value_problem(value)
    if problem is not None:
        raise InvalidError(f"secret {name}: {problem}")
    sealed = svc.secrets.seal(value.encode(), secret_context(project, environment, name))
    with svc.uow() as uow:
        p = get_project(uow, project)
        env = _environment(environment)
        existing = uow.secrets.list(p.id, env)
        if len(existing) >= MAX_VARIABLES and name not in {s.name for s in existing}:
            raise InvalidError(f"{project}/{env} already holds {MAX_VARIABLES} secrets")
        now = svc.clock.now()
        created = uow.secrets.put(p.id, env, name, sealed, actor=actor.user, now=now)
        uow.events.append(
            actor=actor.user,
            kind="secret.set",
            subject=f"{env}/{name}",
            project=p.name,
            now=now,
            payload={"environment": env, "name": name, "created": created},
        )
        uow.commit()
    return SecretInfo(name, actor.user, now)


def list_secrets(
    svc: Services, actor: Actor, project: str, environment: str
) -> Sequence[SecretInfo]:
    """Names, who set them and when: nobody, an admin included, can read a value back."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        p = get_project(uow, project)
        return uow.secrets.list(p.id, _environment(environment))


def remove_secret(svc: Services, actor: Actor, project: str, environment: str, name: str) -> None:
    actor.require(Action.DEPLOY, project=project, environment=environment)
    with svc.uow() as uow:
        p = get_project(uow, project)
        env = _environment(environment)
        if not uow.secrets.remove(p.id, env, name):
            raise NotFoundError(f"{project}/{env} has no secret {name!r}")
        uow.events.append(
            actor=actor.user,
            kind="secret.removed",
            subject=f"{env}/{name}",
            project=p.name,
            now=svc.clock.now(),
            payload={"environment": env, "name": name},
        )
        uow.commit()


def environment_secrets(
    svc: Services, uow: UnitOfWork, project_id: int, project: str, environment: str
) -> dict[str, str]:
    """The opened values, for the processes the environment starts (never for a reply)."""
    return {
        name: svc.secrets.open(blob, secret_context(project, environment, name)).decode()
        for name, blob in uow.secrets.sealed(project_id, environment).items()
    }
