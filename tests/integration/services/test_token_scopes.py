"""Protected environments and scoped roles, written as the attacks (issue 14, findings 3 and 7).

A staging deployer tries production through every entry point that takes an environment; an
admin tries to revoke the last admin token; an operator who lost every admin token recovers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime
from shipyard.cli.main import app
from shipyard.domain.auth import SYSTEM, Actor, Role
from shipyard.domain.deployments import DeploymentState
from shipyard.errors import (
    ErrorCode,
    InvalidError,
    NotFoundError,
    PermissionDenied,
    RefusedError,
    ShipyardError,
)
from shipyard.services import (
    deployments,
    events,
    flags,
    freezes,
    projects,
    releases,
    rollouts,
    secrets,
)
from shipyard.services import tokens as token_service
from tests.support.gitrepo import GitRepo

CONFIG = """\
project: shop
build:
  command: tar czf "$SHIPYARD_ARTIFACTS_DIR/app.tar.gz" app.py
  artifacts: ["*.tar.gz"]
environments:
  - name: staging
    target: {kind: memory}
  - name: production
    target: {kind: memory}
    requires: [staging]
    protected: true
"""


@pytest.fixture(autouse=True)
def _clean_memory_target() -> None:
    MemoryTarget.live.clear()
    MemoryTarget.unhealthy.clear()


def token(rt: Runtime, user: str, role: str, **scope: list[str]) -> Actor:
    _, secret = token_service.create_token(rt.services, SYSTEM, user=user, role=role, **scope)
    return token_service.authenticate(rt.services, secret)


@pytest.fixture
def shop(runtime: Runtime, repo: GitRepo, admin: Actor) -> str:
    """rc.1 built and live in staging."""
    repo.commit("chore: environments", {"shipyard.yaml": CONFIG})
    projects.add_project(runtime.services, admin, str(repo.path))
    _, rc = releases.cut_release(runtime.services, admin, "shop")
    runtime.worker().drain()
    deployments.deploy(runtime.services, admin, "shop", rc.name, "staging")
    runtime.worker().drain()
    return rc.name


def test_staging_deployer_cannot_touch_production(runtime: Runtime, shop: str) -> None:
    svc = runtime.services
    bob = token(runtime, "bob", "deployer", projects=["shop"], environments=["staging"])
    assert (bob.projects, bob.environments) == ({"shop"}, {"staging"})
    attempts = {
        "deploy": lambda: deployments.deploy(svc, bob, "shop", shop, "production"),
        "rollback": lambda: deployments.rollback(svc, bob, "shop", "production"),
        "rollout promote": lambda: rollouts.promote(svc, bob, "shop", "production"),
        "rollout abort": lambda: rollouts.abort(svc, bob, "shop", "production"),
        "rollout pause": lambda: rollouts.pause(svc, bob, "shop", "production"),
        "rollout retry": lambda: rollouts.retry(svc, bob, "shop", "production"),
        "flag create": lambda: flags.create_flag(svc, bob, "shop", "production", "new-cart"),
        "flag kill": lambda: flags.kill(svc, bob, "shop", "production", "new-cart"),
        "freeze": lambda: freezes.add_freeze(
            svc, bob, "shop", "production", reason="x", duration="1h"
        ),
        "secret set": lambda: secrets.set_secret(svc, bob, "shop", "production", "DB", "x"),
        "secret rm": lambda: secrets.remove_secret(svc, bob, "shop", "production", "DB"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(PermissionDenied, match="scoped to"):
            attempt()
            pytest.fail(f"{what} in production was allowed")
    assert deployments.history(svc, bob, "shop", "production") == []  # reading is not scoped
    staged = deployments.deploy(svc, bob, "shop", shop, "staging")  # redeploy: in scope
    assert staged.environment == "staging"
    assert flags.create_flag(svc, bob, "shop", "staging", "new-cart").key == "new-cart"
    assert secrets.set_secret(svc, bob, "shop", "staging", "DB", "x").name == "DB"


def test_staging_approver_cannot_approve_production(runtime: Runtime, shop: str) -> None:
    svc = runtime.services
    ada = token(runtime, "ada", "deployer")
    prod = deployments.deploy(svc, ada, "shop", shop, "production")
    assert prod.state is DeploymentState.AWAITING_APPROVAL  # protected: a second person
    staging_only = token(runtime, "sam", "approver", environments=["staging"])
    with pytest.raises(PermissionDenied):
        deployments.decide(svc, staging_only, prod.id, approve=True)
    with pytest.raises(PermissionDenied):
        deployments.decide(svc, staging_only, prod.id, approve=False)
    other_project = token(runtime, "pat", "approver", projects=["shop"], environments=["qa"])
    with pytest.raises(PermissionDenied):
        deployments.decide(svc, other_project, prod.id, approve=True)
    with pytest.raises(RefusedError) as own:  # the requester, with an approver token of theirs
        deployments.decide(svc, token(runtime, "ada", "approver"), prod.id, approve=True)
    assert own.value.code is ErrorCode.SEPARATION_OF_DUTIES
    prod_approver = token(
        runtime, "pia", "approver", projects=["shop"], environments=["production"]
    )
    assert deployments.decide(svc, prod_approver, prod.id, approve=True).state is (
        DeploymentState.RUNNING
    )


def test_project_scoped_deployer_cannot_cut_another_project(runtime: Runtime, shop: str) -> None:
    elsewhere = token(runtime, "eve", "deployer", projects=["shop"])
    assert releases.list_releases(runtime.services, elsewhere, "shop")
    with pytest.raises(NotFoundError):  # scoping to a project that does not exist grants nothing
        token(runtime, "eve", "deployer", projects=["nope"])
    narrow = token(runtime, "eve", "deployer", projects=["shop"])
    assert narrow.in_scope("shop", "production") and not narrow.in_scope("blog")


def test_scoped_admin_and_bad_scopes_are_refused(runtime: Runtime) -> None:
    with pytest.raises(InvalidError, match="cannot be scoped"):
        token(runtime, "root2", "admin", environments=["staging"])
    for bad in ({"emails": ["not an email"]}, {"environments": ["../etc"]}):
        with pytest.raises(InvalidError):
            token(runtime, "x", "deployer", **bad)
    with runtime.services.uow() as uow:
        assert uow.tokens.count() == 0  # nothing stored


def test_last_admin_token_cannot_be_revoked(runtime: Runtime) -> None:
    svc = runtime.services
    first = token_service.bootstrap_admin(svc)
    assert first is not None
    root = token_service.authenticate(svc, first)
    [mine] = token_service.list_tokens(svc, root)
    with pytest.raises(RefusedError, match="last admin token"):
        token_service.revoke_token(svc, root, mine["id"])
    token(runtime, "ada", "deployer")  # other roles keep nobody able to administer
    token(runtime, "ada", "approver")
    with pytest.raises(RefusedError, match="last admin token"):
        token_service.revoke_token(svc, root, mine["id"])
    second_id, second = token_service.create_token(svc, root, user="ops", role="admin")
    token_service.revoke_token(svc, root, mine["id"])  # another admin is left: fine
    ops = token_service.authenticate(svc, second)
    with pytest.raises(RefusedError, match="last admin token"):
        token_service.revoke_token(svc, ops, second_id)
    assert token_service.authenticate(svc, second).user == "ops"
    kinds = [e.kind for e in events.list_events(svc, ops, limit=100)]
    assert kinds.count("token.revoked") == 1


def test_admin_token_recovery_on_the_host(
    runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Every admin token lost: the host's operator mints one from the database, audited."""
    svc = runtime.services
    token_service.bootstrap_admin(svc)  # and then lost
    result = CliRunner().invoke(
        app,
        ["admin", "token", "--data-dir", str(tmp_path / "data"), "--database-url", database_url],
    )
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    recovered = token_service.authenticate(svc, secret)
    assert (recovered.user, recovered.role) == (token_service.RECOVERY_USER, Role.ADMIN)
    [event] = [
        e for e in events.list_events(svc, recovered, limit=100) if e.kind == "token.recovered"
    ]
    assert event.actor.startswith("host:")


def test_admin_token_recovery_refuses_a_dir_without_a_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["admin", "token", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert not (tmp_path / "empty").exists()


def test_two_admins_revoking_each_other_at_once_leave_one(runtime: Runtime) -> None:
    svc = runtime.services
    ids = [token_service.create_token(svc, SYSTEM, user=u, role="admin")[0] for u in ("a", "b")]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def revoke(token_id: int) -> None:
        barrier.wait()
        try:
            token_service.revoke_token(svc, SYSTEM, token_id)
            outcomes.append("revoked")
        except ShipyardError as exc:
            outcomes.append(exc.code.value)

    threads = [threading.Thread(target=revoke, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("revoked") == 1, outcomes
    with svc.uow() as uow:
        assert uow.tokens.global_admins() == 1
