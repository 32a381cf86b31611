"""Twenty requests at once against the real app and database: the rows prove exactly once.

On main these gave 8-15 approvals and several deploy jobs for one deployment (SQLite), seven
deployments of one candidate (PostgreSQL), and 500s for parallel picks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shipyard.bootstrap import Runtime
from shipyard.domain.auth import SYSTEM, Actor, Role
from shipyard.services import deployments, releases, tokens
from shipyard.store.tables import ApprovalRow, DeploymentRow, JobRow
from tests.support.asgi_server import at_once, post, serving
from tests.support.gitrepo import GitRepo
from tests.support.runtime import first_candidate, memory_runtime, shop_repo, shop_yaml

CONFIG = shop_yaml("""\
environments:
  - name: staging
    target: {kind: memory}
  - name: production
    target: {kind: memory}
    approval: {required: 3, approvers: ["role:approver"]}
""")

ADA = Actor("ada", Role.DEPLOYER)
pytestmark = pytest.mark.slow


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[tuple[Runtime, GitRepo, str]]:
    with memory_runtime(tmp_path, database_url) as rt:
        repo = shop_repo(tmp_path, CONFIG)
        yield rt, repo, first_candidate(rt, repo, ADA)


def token(rt: Runtime, user: str, role: Role) -> str:
    return tokens.create_token(rt.services, SYSTEM, user=user, role=role.value)[1]


def count(rt: Runtime, query: object) -> int:
    with rt.engine.connect() as conn:
        return int(conn.scalar(query) or 0)  # type: ignore[call-overload]


def test_twenty_concurrent_approvals_record_one_per_person_and_one_deploy_job(
    shop: tuple[Runtime, GitRepo, str],
) -> None:
    rt, _, candidate = shop
    waiting = deployments.deploy(rt.services, ADA, "shop", candidate, "production")
    approvers = [token(rt, f"approver{i}", Role.APPROVER) for i in range(5)]
    with serving(rt.services) as base:
        answers = at_once(
            [
                (lambda t=t: post(base, f"/api/v1/deployments/{waiting.id}/approve", t, {}))
                for t in approvers * 4
            ]
        )
    codes = Counter(r.status_code for r in answers)
    assert set(codes) <= {200, 409}, [r.text for r in answers if r.status_code not in (200, 409)]
    with rt.engine.connect() as conn:
        people = conn.execute(
            select(ApprovalRow.user, func.count())
            .where(ApprovalRow.deployment_id == waiting.id)
            .group_by(ApprovalRow.user)
        ).all()
    assert all(n == 1 for _, n in people), people
    assert len(people) == 3  # the rule needs three: the deployment started on the third
    jobs = select(func.count()).where(JobRow.kind == "deploy", JobRow.subject_id == waiting.id)
    assert count(rt, jobs) == 1


def test_twenty_parallel_deploys_of_one_candidate_create_one_deployment(
    shop: tuple[Runtime, GitRepo, str],
) -> None:
    rt, _, candidate = shop
    deployer = token(rt, "ada", Role.DEPLOYER)
    body = {"candidate": candidate, "environment": "staging"}
    with serving(rt.services) as base:
        answers = at_once(
            [lambda: post(base, "/api/v1/projects/shop/deployments", deployer, body)] * 20
        )
    codes = Counter(r.status_code for r in answers)
    assert codes[201] == 1 and codes[409] == 19, codes
    rows = select(func.count()).where(
        DeploymentRow.environment == "staging", DeploymentRow.candidate == candidate
    )
    assert count(rt, rows) == 1


def test_twenty_parallel_picks_answer_no_server_error(
    shop: tuple[Runtime, GitRepo, str],
) -> None:
    rt, repo, _ = shop
    version = releases.list_releases(rt.services, ADA, "shop")[1][0][0].version
    shas = [repo.commit(f"fix: {i}", {f"fix{i}.py": f"N = {i}\n"}) for i in range(20)]
    releaser = token(rt, "rel", Role.DEPLOYER)
    path = f"/api/v1/projects/shop/releases/{version}/picks"
    with serving(rt.services) as base:
        answers = at_once([(lambda s=s: post(base, path, releaser, {"shas": [s]})) for s in shas])
    bad = [(r.status_code, r.text) for r in answers if r.status_code >= 500]
    assert not bad
    assert {r.status_code for r in answers} <= {201, 409}
