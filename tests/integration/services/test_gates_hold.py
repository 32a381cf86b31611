"""Gates that hold, written as the attacks that walked around them (issue 14, finding 3).

Each test plays the attacker on real git and on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor, Role
from shipyard.domain.deployments import DeploymentState
from shipyard.errors import (
    ConflictError,
    ErrorCode,
    InvalidError,
    NotFoundError,
    PermissionDenied,
    RefusedError,
)
from shipyard.services import (
    deployments,
    events,
    freezes,
    projects,
    releases,
    rollouts,
    tokens,
)
from tests.support.gitrepo import GitRepo
from tests.support.runtime import first_candidate, memory_runtime, shop_repo, shop_yaml

ENVS = """\
environments:
  - name: staging
    target: {kind: memory}
  - name: production
    target: {kind: memory}
    requires: [staging]
    approval: {required: 1}
"""
BUILD = """\
build:
  command: tar czf "$SHIPYARD_ARTIFACTS_DIR/app.tar.gz" app.py
  artifacts: ["*.tar.gz"]
"""
CUTTER = Actor("cutter", Role.DEPLOYER)
BOB = Actor("bob", Role.APPROVER)


@pytest.fixture(autouse=True)
def _clean_memory_target() -> None:
    MemoryTarget.live.clear()
    MemoryTarget.unhealthy.clear()


def setup_project(rt: Runtime, repo: GitRepo, admin: Actor, config: str = ENVS) -> None:
    repo.commit("chore: environments", {"shipyard.yaml": "project: shop\n" + BUILD + config})
    projects.add_project(rt.services, admin, str(repo.path))


def staged(rt: Runtime) -> str:
    """rc.1 cut by someone else, built and succeeded in staging: ready for production."""
    _, rc = releases.cut_release(rt.services, CUTTER, "shop")
    rt.worker().drain()
    deployments.deploy(rt.services, CUTTER, "shop", rc.name, "staging")
    rt.worker().drain()
    return rc.name


def test_admin_cannot_approve_their_own_deployment(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin)
    rc = staged(runtime)
    mine = deployments.deploy(svc, admin, "shop", rc, "production")
    assert mine.state is DeploymentState.AWAITING_APPROVAL
    with pytest.raises(RefusedError) as refused:
        deployments.decide(svc, admin, mine.id, approve=True)
    assert refused.value.code is ErrorCode.SEPARATION_OF_DUTIES
    assert "asked to deploy" in refused.value.message
    assert deployments.get_deployment(svc, BOB, mine.id)[0].state is (
        DeploymentState.AWAITING_APPROVAL
    )
    assert deployments.decide(svc, BOB, mine.id, approve=True).state is DeploymentState.RUNNING


def test_deployer_with_an_approver_token_cannot_approve_their_own_deployment(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin)
    rc = staged(runtime)
    dan_deployer, dan_approver = Actor("dan", Role.DEPLOYER), Actor("Dan", Role.APPROVER)
    mine = deployments.deploy(svc, dan_deployer, "shop", rc, "production")
    with pytest.raises(RefusedError) as refused:
        deployments.decide(svc, dan_approver, mine.id, approve=True)
    assert refused.value.code is ErrorCode.SEPARATION_OF_DUTIES
    # a rejection of one's own request stays allowed: stopping is always safe
    assert deployments.decide(svc, dan_approver, mine.id, approve=False).state is (
        DeploymentState.CANCELED
    )


GATED = """\
environments:
  - name: production
    target: {kind: memory}
    router: {port: 18998}
    policy: gated
policies:
  gated:
    steps:
      - set_weight: 20
      - approval: {required: 1}
"""


def test_admin_cannot_approve_the_rollout_step_of_their_own_deployment(
    tmp_path: Path, database_url: str
) -> None:
    with memory_runtime(tmp_path, database_url, router=MemoryRouter()) as rt:
        repo = shop_repo(tmp_path, shop_yaml(GATED))
        rc1 = first_candidate(rt, repo, CUTTER)
        deployments.deploy(rt.services, CUTTER, "shop", rc1, "production")  # the first goes live
        rt.worker().drain()
        fix = repo.commit("fix: rounding (#5)", {"app.py": "V = 2\n"})
        rc2 = releases.pick(rt.services, CUTTER, "shop", "1.0.0", [fix]).name
        rt.worker().drain()
        root = Actor("root", Role.ADMIN)
        deployments.deploy(rt.services, root, "shop", rc2, "production")
        rt.worker().drain()
        for me in (root, Actor("ROOT", Role.APPROVER)):
            with pytest.raises(RefusedError) as refused:
                rollouts.promote(rt.services, me, "shop", "production")
            assert refused.value.code is ErrorCode.SEPARATION_OF_DUTIES
            with pytest.raises(RefusedError):  # nor skip the step with --full
                rollouts.promote(rt.services, me, "shop", "production", full=True)
        view = rollouts.status(rt.services, BOB, "shop", "production")
        assert view.rollout.pause_reason == "waiting for 1 approval(s)"
        assert rollouts.promote(rt.services, BOB, "shop", "production").step == 2


# --- a person is known by all their emails --------------------------------------------------


def approver_with_emails(rt: Runtime, admin: Actor, user: str, *emails: str) -> Actor:
    _, secret = tokens.create_token(
        rt.services, admin, user=user, role="approver", emails=list(emails)
    )
    return tokens.authenticate(rt.services, secret)


def test_approver_cannot_approve_commits_they_wrote_under_another_case(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    svc = runtime.services
    repo.commit("feat: cart", {"cart.py": "A = 1\n"}, author="Grace Hopper <GRACE@example.com>")
    setup_project(runtime, repo, admin)
    grace = approver_with_emails(runtime, admin, "grace", "grace@example.com")
    assert grace.emails == {"grace@example.com"}
    prod = deployments.deploy(svc, CUTTER, "shop", staged(runtime), "production")
    with pytest.raises(RefusedError) as refused:
        deployments.decide(svc, grace, prod.id, approve=True)
    assert refused.value.code is ErrorCode.SEPARATION_OF_DUTIES
    assert "grace wrote commits" in refused.value.message


def test_approver_cannot_approve_commits_the_mailmap_says_are_theirs(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    svc = runtime.services
    repo.commit("feat: cart", {"cart.py": "A = 1\n"}, author="G. H. <hopper@corp.example>")
    repo.commit(
        "chore: mailmap",
        {".mailmap": "Grace Hopper <grace@example.com> <HOPPER@corp.example>\n"},
        author="Linus <linus@example.com>",
    )
    setup_project(runtime, repo, admin)
    grace = approver_with_emails(runtime, admin, "grace", "grace@example.com")
    other = approver_with_emails(runtime, admin, "hedy", "hedy@example.com")
    prod = deployments.deploy(svc, CUTTER, "shop", staged(runtime), "production")
    with pytest.raises(RefusedError) as refused:
        deployments.decide(svc, grace, prod.id, approve=True)
    assert refused.value.code is ErrorCode.SEPARATION_OF_DUTIES
    assert deployments.decide(svc, other, prod.id, approve=True).state is DeploymentState.RUNNING


def test_an_approval_recorded_before_the_email_was_known_does_not_count(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    """Counting re-reads who is who: grace's second token names the email her commits carry."""
    svc = runtime.services
    repo.commit("feat: cart", {"cart.py": "A = 1\n"}, author="Grace Hopper <grace@corp.example>")
    setup_project(runtime, repo, admin, ENVS.replace("required: 1", "required: 2"))
    grace = approver_with_emails(runtime, admin, "grace", "grace@example.com")
    prod = deployments.deploy(svc, CUTTER, "shop", staged(runtime), "production")
    deployments.decide(svc, grace, prod.id, approve=True)  # her corp email is not known yet
    approver_with_emails(runtime, admin, "grace", "Grace@Corp.example")
    after = deployments.decide(svc, BOB, prod.id, approve=True)
    assert after.state is DeploymentState.AWAITING_APPROVAL
    assert "not allowed to approve: grace" in " ".join(after.waiting_for)


# --- freezes and approval rules are live ------------------------------------------------------


def _mainline_freeze(repo: GitRepo, now: datetime) -> None:
    """Add a freeze of production to the mainline's shipyard.yaml (after the cut)."""
    start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(days=1)).isoformat()
    text = (repo.path / "shipyard.yaml").read_text()
    frozen = text.replace(
        "    approval: {required: 1}\n",
        f'    approval: {{required: 1}}\n    freeze: [{{from: "{start}", to: "{end}"}}]\n',
    )
    assert frozen != text
    repo.commit("chore: freeze production for the sale", {"shipyard.yaml": frozen})


def test_candidate_cut_before_a_freeze_was_added_does_not_deploy_during_it(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin)
    rc = staged(runtime)  # its snapshot has no freeze
    waiting = deployments.deploy(svc, CUTTER, "shop", rc, "production")
    _mainline_freeze(repo, svc.clock.now())
    # the deployment asked before the freeze does not start during it, approved or not
    after = deployments.decide(svc, BOB, waiting.id, approve=True)
    assert after.state is DeploymentState.AWAITING_APPROVAL
    assert "frozen" in " ".join(after.waiting_for)
    runtime.worker().drain()
    assert MemoryTarget.live.get(("shop", "production"), set()) == set()
    _, rows = deployments.status(svc, BOB, "shop")
    assert [r.frozen_until is not None for r in rows] == [False, True]
    # one decision per person: a second approver rejects the waiting one
    deployments.decide(svc, admin, waiting.id, approve=False)
    with pytest.raises(RefusedError) as frozen:  # nor does a new request of the old candidate
        deployments.deploy(svc, admin, "shop", rc, "production")
    assert frozen.value.code is ErrorCode.FROZEN


def test_a_server_freeze_stops_every_candidate_until_an_approver_ends_it(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin)
    rc = staged(runtime)
    waiting = deployments.deploy(svc, CUTTER, "shop", rc, "production")
    f = freezes.add_freeze(svc, CUTTER, "shop", "production", duration="2h", reason="incident 42")
    assert f.end - f.start == timedelta(hours=2)
    after = deployments.decide(svc, BOB, waiting.id, approve=True)
    assert after.state is DeploymentState.AWAITING_APPROVAL
    assert f"freeze #{f.id} (incident 42)" in " ".join(after.waiting_for)
    with pytest.raises(PermissionDenied):  # lifting a freeze opens the gate: not a deployer's call
        freezes.end_freeze(svc, CUTTER, f.id)
    freezes.end_freeze(svc, BOB, f.id)
    with pytest.raises(ConflictError):
        freezes.end_freeze(svc, BOB, f.id)
    assert deployments.reevaluate_waiting(svc) == 1
    assert deployments.get_deployment(svc, BOB, waiting.id)[0].state is DeploymentState.RUNNING
    kinds = [e.kind for e in events.list_events(svc, BOB, project="shop", limit=1000)]
    assert "freeze.added" in kinds and "freeze.ended" in kinds


def test_overriding_a_server_freeze_needs_a_reason_and_a_second_person(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin)
    rc = staged(runtime)
    freezes.add_freeze(svc, BOB, "shop", "production", duration="1d", reason="sale")
    with pytest.raises(InvalidError):
        deployments.deploy(svc, CUTTER, "shop", rc, "production", override_freeze=True)
    d = deployments.deploy(
        svc, CUTTER, "shop", rc, "production", override_freeze=True, reason="fix checkout"
    )
    assert d.state is DeploymentState.AWAITING_APPROVAL
    with pytest.raises(RefusedError):
        deployments.decide(svc, Actor("cutter", Role.APPROVER), d.id, approve=True)
    assert deployments.decide(svc, BOB, d.id, approve=True).state is DeploymentState.RUNNING


def test_bad_freezes_are_refused_and_change_nothing(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin)
    now = svc.clock.now()
    bad: list[dict[str, object]] = [
        {"reason": "x"},
        {"reason": "x", "duration": "2h", "until": now + timedelta(hours=1)},
        {"reason": "", "duration": "2h"},
        {"reason": "x", "duration": "soon"},
        {"reason": "x", "duration": "400d"},
        {"reason": "x", "until": now - timedelta(hours=1)},
    ]
    for kwargs in bad:
        with pytest.raises(InvalidError):
            freezes.add_freeze(svc, CUTTER, "shop", "production", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        freezes.add_freeze(svc, CUTTER, "shop", "prod", reason="x", duration="1h")
    with pytest.raises(PermissionDenied):
        freezes.add_freeze(
            svc, Actor("vera", Role.VIEWER), "shop", "production", reason="x", duration="1h"
        )
    assert freezes.list_freezes(svc, BOB) == []


def test_a_rule_tightened_on_the_mainline_holds_for_candidates_already_cut(
    runtime: Runtime, repo: GitRepo, admin: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin)
    rc = staged(runtime)
    text = (repo.path / "shipyard.yaml").read_text()
    repo.commit(
        "chore: two approvals for production",
        {"shipyard.yaml": text.replace("approval: {required: 1}", "approval: {required: 2}")},
    )
    d = deployments.deploy(svc, CUTTER, "shop", rc, "production")
    after = deployments.decide(svc, BOB, d.id, approve=True)
    assert after.state is DeploymentState.AWAITING_APPROVAL
    assert "1 of 2" in " ".join(after.waiting_for)
