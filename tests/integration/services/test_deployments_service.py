"""Deployment use cases end to end through the engine, on real git and both databases.

The memory target stands in for the machine; tests/integration/targets cover real processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor, Role
from shipyard.domain.deployments import DeploymentMode, DeploymentState
from shipyard.errors import ConflictError, ErrorCode, IntegrityError, PermissionDenied, RefusedError
from shipyard.services import deployments, projects, releases
from tests.support.gitrepo import GitRepo

BUILD = """\
build:
  command: tar czf "$SHIPYARD_ARTIFACTS_DIR/app.tar.gz" app.py
  artifacts: ["*.tar.gz"]
"""
ENVS = """\
environments:
  - name: staging
    target: {kind: memory}
  - name: production
    target: {kind: memory}
    requires: [staging]
    approval: {required: 1, approvers: ["role:approver"]}
"""

BOB = Actor("bob", Role.APPROVER)
CAROL = Actor("carol", Role.APPROVER)


@pytest.fixture(autouse=True)
def _clean_memory_target() -> None:
    MemoryTarget.live.clear()
    MemoryTarget.unhealthy.clear()


def setup_project(rt: Runtime, repo: GitRepo, admin: Actor, config: str) -> None:
    repo.commit("chore: environments", {"shipyard.yaml": "project: shop\n" + BUILD + config})
    projects.add_project(rt.services, admin, str(repo.path))


def cut(rt: Runtime, actor: Actor, **kwargs: str) -> str:
    _, rc = releases.cut_release(rt.services, actor, "shop", **kwargs)
    rt.worker().drain()
    return rc.name


def run(rt: Runtime) -> None:
    rt.worker().drain()


def state(rt: Runtime, deployment_id: int) -> DeploymentState:
    d, _ = deployments.get_deployment(rt.services, BOB, deployment_id)
    return d.state


def test_promote_through_gates_with_separation_of_duties(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin, ENVS)
    rc1 = cut(runtime, ada)

    with pytest.raises(RefusedError) as early:
        deployments.deploy(svc, ada, "shop", rc1, "production")
    assert early.value.code is ErrorCode.GATE_CLOSED
    assert "staging" in early.value.message
    assert deployments.history(svc, ada, "shop", None) == []

    staged = deployments.deploy(svc, ada, "shop", rc1, "staging")
    assert staged.state is DeploymentState.RUNNING
    run(runtime)
    assert state(runtime, staged.id) is DeploymentState.SUCCEEDED
    assert MemoryTarget.live[("shop", "staging")] == {rc1}

    prod = deployments.deploy(svc, ada, "shop", rc1, "production")
    assert prod.state is DeploymentState.AWAITING_APPROVAL
    assert prod.mode is DeploymentMode.PROMOTE
    with pytest.raises(PermissionDenied):
        deployments.decide(svc, ada, prod.id, approve=True)  # a deployer is no approver
    ada_as_approver = Actor("ada", Role.APPROVER)
    with pytest.raises(RefusedError) as sod:
        deployments.decide(svc, ada_as_approver, prod.id, approve=True)
    assert sod.value.code is ErrorCode.SEPARATION_OF_DUTIES
    assert "ada cut" in sod.value.message
    author = Actor("Ada Lovelace", Role.APPROVER)  # wrote the commits this brings in
    with pytest.raises(RefusedError):
        deployments.decide(svc, author, prod.id, approve=True)

    approved = deployments.decide(svc, BOB, prod.id, approve=True, comment="lgtm")
    assert approved.state is DeploymentState.RUNNING  # no second click
    run(runtime)
    assert state(runtime, prod.id) is DeploymentState.SUCCEEDED

    _, rows = deployments.status(svc, BOB, "shop")
    assert [(r.environment, r.candidate) for r in rows] == [("staging", rc1), ("production", rc1)]


def test_reject_cancels_and_a_duplicate_request_is_refused(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin, ENVS)
    rc1 = cut(runtime, ada)
    deployments.deploy(svc, ada, "shop", rc1, "staging")
    run(runtime)
    prod = deployments.deploy(svc, ada, "shop", rc1, "production")
    with pytest.raises(ConflictError, match="already being deployed"):
        deployments.deploy(svc, ada, "shop", rc1, "production")
    rejected = deployments.decide(svc, BOB, prod.id, approve=False, comment="not today")
    assert rejected.state is DeploymentState.CANCELED
    assert rejected.outcome == "rejected by bob"
    with svc.uow() as uow:
        [event] = [e for e in uow.events.list() if e.kind == "deployment.rejected"]
    assert (event.actor, event.payload["comment"]) == ("bob", "not today")


def test_rollback_redeploys_the_previous_good_candidate_and_veto_excludes_it(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin, ENVS)
    rc1 = cut(runtime, ada)
    fix = repo.commit("fix: rounding (#5)", {"app.py": "PRICE = 11\n"})
    rc2 = releases.pick(svc, ada, "shop", "0.1.0", [fix]).name
    run(runtime)
    first = deployments.deploy(svc, ada, "shop", rc1, "staging")
    run(runtime)
    second = deployments.deploy(svc, ada, "shop", rc2, "staging")
    run(runtime)
    assert MemoryTarget.live[("shop", "staging")] == {rc2}

    back = deployments.rollback(svc, ada, "shop", "staging")
    assert (back.mode, back.candidate, back.from_candidate) == (DeploymentMode.ROLLBACK, rc1, rc2)
    run(runtime)
    assert state(runtime, back.id) is DeploymentState.SUCCEEDED
    assert state(runtime, second.id) is DeploymentState.ROLLED_BACK
    assert state(runtime, first.id) is DeploymentState.SUCCEEDED
    assert MemoryTarget.live[("shop", "staging")] == {rc1}

    deployments.veto(svc, ada, "shop", rc2, reason="bad rounding")
    with pytest.raises(RefusedError) as vetoed:
        deployments.deploy(svc, ada, "shop", rc2, "staging")
    assert vetoed.value.code is ErrorCode.VETOED
    with pytest.raises(RefusedError, match="nothing to roll back to"):
        deployments.rollback(svc, ada, "shop", "staging")


def test_a_digest_mismatch_fails_the_deployment_and_keeps_the_old_version(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin, ENVS)
    rc1 = cut(runtime, ada)
    deployments.deploy(svc, ada, "shop", rc1, "staging")
    run(runtime)
    fix = repo.commit("fix: x (#6)", {"app.py": "PRICE = 12\n"})
    rc2_candidate = releases.pick(svc, ada, "shop", "0.1.0", [fix])
    run(runtime)
    built = releases.show_release(svc, ada, "shop", "0.1.0").candidates[-1]
    stored = svc.artifacts.path(built.artifacts[0].digest)
    stored.chmod(0o644)
    stored.write_bytes(b"tampered")
    with pytest.raises(IntegrityError):
        svc.artifacts.verify(built.artifacts[0].digest)

    d = deployments.deploy(svc, ada, "shop", rc2_candidate.name, "staging")
    run(runtime)
    failed, _ = deployments.get_deployment(svc, ada, d.id)
    assert failed.state is DeploymentState.FAILED
    assert "expected sha256:" in failed.outcome and f"{rc1} keeps serving" in failed.outcome
    assert MemoryTarget.live[("shop", "staging")] == {rc1}


def test_freeze_refuses_unless_overridden_and_confirmed_by_a_second_person(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    now = datetime.now(UTC)
    frozen = f"""\
environments:
  - name: staging
    target: {{kind: memory}}
    freeze:
      - from: "{(now - timedelta(hours=1)).isoformat()}"
        to: "{(now + timedelta(hours=1)).isoformat()}"
        reason: launch
"""
    setup_project(runtime, repo, admin, frozen)
    rc1 = cut(runtime, ada)
    with pytest.raises(RefusedError) as err:
        deployments.deploy(svc, ada, "shop", rc1, "staging")
    assert err.value.code is ErrorCode.FROZEN
    waiting = deployments.deploy(
        svc, ada, "shop", rc1, "staging", override_freeze=True, reason="hotfix"
    )
    assert waiting.state is DeploymentState.AWAITING_APPROVAL
    with pytest.raises(RefusedError) as self_confirm:
        deployments.decide(svc, Actor("ada", Role.APPROVER), waiting.id, approve=True)
    assert self_confirm.value.code is ErrorCode.SEPARATION_OF_DUTIES
    confirmed = deployments.decide(svc, CAROL, waiting.id, approve=True)
    assert confirmed.state is DeploymentState.RUNNING
    run(runtime)
    assert state(runtime, waiting.id) is DeploymentState.SUCCEEDED


def test_continuous_deployment_and_single_step(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    config = """\
delivery: single-step
environments:
  - name: sandbox
    target: {kind: memory}
  - name: staging
    target: {kind: memory}
    auto_promote: true
  - name: production
    target: {kind: memory}
    requires: [staging]
"""
    setup_project(runtime, repo, admin, config)
    rc1 = cut(runtime, ada)  # built -> sandbox at once -> staging automatically; production waits
    run(runtime)
    history = deployments.history(svc, ada, "shop", None)
    assert sorted((d.environment, d.state.value, d.requested_by) for d in history) == [
        ("sandbox", "succeeded", "shipyard"),
        ("staging", "succeeded", "shipyard"),
    ]
    run(runtime)  # a second pass repeats nothing
    assert len(deployments.history(svc, ada, "shop", None)) == 2
    assert MemoryTarget.live[("shop", "staging")] == {rc1}


def test_an_unhealthy_version_fails_and_diff_is_patch_aware(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin, ENVS)
    rc1 = cut(runtime, ada)
    deployments.deploy(svc, ada, "shop", rc1, "staging")
    run(runtime)
    fix = repo.commit("fix: tax (#7)", {"tax.py": "T = 1\n"})
    rc2 = releases.pick(svc, ada, "shop", "0.1.0", [fix]).name
    run(runtime)
    MemoryTarget.unhealthy.add(rc2)
    d = deployments.deploy(svc, ada, "shop", rc2, "staging")
    run(runtime)
    assert state(runtime, d.id) is DeploymentState.FAILED
    MemoryTarget.unhealthy.clear()
    d = deployments.deploy(svc, ada, "shop", rc2, "staging")
    run(runtime)
    assert state(runtime, d.id) is DeploymentState.SUCCEEDED

    repo.commit("feat: wishlist (#8)", {"wish.py": "W = 1\n"})
    rc_next = cut(runtime, ada)  # 0.2.0 contains the fix (#7) as its original mainline commit
    running, commits = deployments.diff(svc, ada, "shop", "staging", rc_next)
    assert running == rc2
    assert [c.subject for c in commits] == ["feat: wishlist (#8)"]
