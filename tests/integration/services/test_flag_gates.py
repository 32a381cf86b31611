"""Flag changes in a protected environment pass the same gates as a deployment (issue 14,
finding 10): one deployer could flip a production flag with no approval, freeze or second person.

On real git (the mainline's shipyard.yaml says what is protected) and both databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from shipyard.api.app import create_app
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor, Role
from shipyard.errors import ConflictError, ErrorCode, PermissionDenied, RefusedError
from shipyard.ports.repositories import FlagRecord, FlagRequest, FlagRequestState
from shipyard.services import events, flag_requests, flags, freezes, projects, tokens
from tests.support.gitrepo import GitRepo

CONFIG = """\
project: shop
environments:
  - name: staging
    target: {kind: memory}
  - name: production
    target: {kind: memory}
    protected: true
"""
ADA = Actor("ada", Role.DEPLOYER)
BOB = Actor("bob", Role.APPROVER)


@pytest.fixture
def shop(runtime: Runtime, repo: GitRepo, admin: Actor) -> Runtime:
    repo.commit("chore: environments", {"shipyard.yaml": CONFIG})
    projects.add_project(runtime.services, admin, str(repo.path))
    return runtime


def state_of(rt: Runtime, environment: str, key: str) -> FlagRecord | None:
    with rt.services.uow() as uow:
        project = uow.projects.get("shop")
        assert project is not None
        return uow.flags.get(project, environment, key)


def test_deployer_cannot_flip_a_production_flag_alone(shop: Runtime) -> None:
    svc = shop.services
    staged = flags.create_flag(svc, ADA, "shop", "staging", "new-cart", enabled=True)
    assert isinstance(staged, FlagRecord)  # not protected: at once
    asked = flags.create_flag(svc, ADA, "shop", "production", "new-cart", enabled=True)
    assert isinstance(asked, FlagRequest) and asked.state is FlagRequestState.PENDING
    assert state_of(shop, "production", "new-cart") is None  # nothing changed yet
    with pytest.raises(RefusedError) as own:
        flag_requests.approve(svc, Actor("ADA", Role.APPROVER), asked.id)
    assert own.value.code is ErrorCode.SEPARATION_OF_DUTIES
    with pytest.raises(PermissionDenied):
        flag_requests.approve(svc, Actor("eve", Role.DEPLOYER), asked.id)
    done = flag_requests.approve(svc, BOB, asked.id)
    assert done.state is FlagRequestState.APPLIED
    live = state_of(shop, "production", "new-cart")
    assert live is not None and live.definition["enabled"] is True
    with pytest.raises(ConflictError):  # decided once
        flag_requests.approve(svc, Actor("carol", Role.APPROVER), asked.id)
    kinds = [e.kind for e in events.list_events(svc, BOB, project="shop", limit=1000)]
    assert kinds.count("flag.change_requested") == 1 and "flag.change_approved" in kinds

    rolled = flags.rollout(svc, ADA, "shop", "production", "new-cart", 50)
    assert isinstance(rolled, FlagRequest)  # every change, not only creation
    assert flag_requests.reject(svc, ADA, rolled.id).state is FlagRequestState.REJECTED
    assert flag_requests.list_requests(svc, BOB, "shop", "production") == []


def test_kill_switch_skips_approval_and_is_audited_as_an_emergency(shop: Runtime) -> None:
    svc = shop.services
    asked = flags.create_flag(svc, ADA, "shop", "production", "new-cart", enabled=True)
    assert isinstance(asked, FlagRequest)
    flag_requests.approve(svc, BOB, asked.id)
    freezes.add_freeze(svc, BOB, "shop", "production", duration="1h", reason="sale")
    killed = flags.kill(svc, ADA, "shop", "production", "new-cart")  # frozen, yet at once
    assert killed.definition["enabled"] is False
    [event] = [
        e
        for e in events.list_events(svc, BOB, project="shop", limit=1000)
        if e.kind == "flag.killed"
    ]
    assert event.payload["emergency"] is True
    assert event.payload["approval"] == "skipped: kill switch"


def test_a_freeze_refuses_flag_changes_and_their_approval(shop: Runtime) -> None:
    svc = shop.services
    asked = flags.create_flag(svc, ADA, "shop", "production", "new-cart", enabled=True)
    assert isinstance(asked, FlagRequest)
    freezes.add_freeze(svc, ADA, "shop", "production", duration="2h", reason="black friday")
    with pytest.raises(RefusedError) as frozen:
        flags.create_flag(svc, ADA, "shop", "production", "other")
    assert frozen.value.code is ErrorCode.FROZEN
    with pytest.raises(RefusedError) as waiting:
        flag_requests.approve(svc, BOB, asked.id)
    assert waiting.value.code is ErrorCode.FROZEN
    assert state_of(shop, "production", "new-cart") is None


def test_a_request_is_not_applied_over_a_flag_that_changed_since(shop: Runtime) -> None:
    svc = shop.services
    first = flags.create_flag(svc, ADA, "shop", "production", "new-cart")
    assert isinstance(first, FlagRequest)
    flag_requests.approve(svc, BOB, first.id)
    on = flags.set_flag(svc, ADA, "shop", "production", "new-cart", enabled=True)
    half = flags.rollout(svc, ADA, "shop", "production", "new-cart", 50)
    assert isinstance(on, FlagRequest) and isinstance(half, FlagRequest)
    flag_requests.approve(svc, BOB, half.id)
    with pytest.raises(ConflictError, match="changed since"):
        flag_requests.approve(svc, BOB, on.id)
    [closed] = [
        r
        for r in flag_requests.list_requests(svc, BOB, "shop", "production", pending_only=False)
        if r.id == on.id
    ]
    assert closed.state is FlagRequestState.REJECTED


def test_the_api_answers_202_with_the_request(shop: Runtime, admin: Actor) -> None:
    svc = shop.services
    _, ada = tokens.create_token(svc, admin, user="ada", role="deployer")
    _, bob = tokens.create_token(svc, admin, user="bob", role="approver")
    client = TestClient(create_app(svc))
    path = "/api/v1/projects/shop/environments/production/flags"
    asked = client.post(path, json={"key": "k"}, headers={"Authorization": f"Bearer {ada}"})
    assert asked.status_code == 202, asked.text
    number = asked.json()["request"]
    listed = client.get(
        "/api/v1/projects/shop/environments/production/flag-requests",
        headers={"Authorization": f"Bearer {bob}"},
    )
    assert [r["request"] for r in listed.json()] == [number]
    own = client.post(
        f"/api/v1/flag-requests/{number}/approve", headers={"Authorization": f"Bearer {ada}"}
    )
    assert own.status_code == 403
    ok = client.post(
        f"/api/v1/flag-requests/{number}/approve", headers={"Authorization": f"Bearer {bob}"}
    )
    assert ok.status_code == 200 and ok.json()["state"] == "applied"
    staging = client.post(
        "/api/v1/projects/shop/environments/staging/flags",
        json={"key": "k"},
        headers={"Authorization": f"Bearer {ada}"},
    )
    assert staging.status_code == 201


def test_segments_of_a_protected_environment_wait_for_a_second_person(shop: Runtime) -> None:
    svc = shop.services
    segment = [{"id": 1, "name": "beta", "constraints": []}]
    assert isinstance(flags.set_segments(svc, ADA, "shop", "staging", segment), int)
    asked = flags.set_segments(svc, ADA, "shop", "production", segment)
    assert isinstance(asked, FlagRequest) and asked.key == ""
    with shop.services.uow() as uow:
        project = uow.projects.get("shop")
        assert project is not None
        assert list(uow.flags.segments(project, "production")) == []
    with pytest.raises(RefusedError):
        flag_requests.approve(svc, Actor("ada", Role.ADMIN), asked.id)
    assert flag_requests.approve(svc, BOB, asked.id).state is FlagRequestState.APPLIED
    with shop.services.uow() as uow:
        project = uow.projects.get("shop")
        assert project is not None
        assert [s["name"] for s in uow.flags.segments(project, "production")] == ["beta"]
    stale = flags.set_segments(svc, ADA, "shop", "production", [])
    again = flags.set_segments(svc, ADA, "shop", "production", [{**segment[0], "name": "b2"}])
    assert isinstance(stale, FlagRequest) and isinstance(again, FlagRequest)
    flag_requests.approve(svc, BOB, again.id)
    with pytest.raises(ConflictError, match="changed since"):
        flag_requests.approve(svc, BOB, stale.id)
