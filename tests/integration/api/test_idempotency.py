"""``Idempotency-Key`` on POSTs, against the real app and both databases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shipyard.adapters.clock import FixedClock
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import SYSTEM, Actor, Role
from shipyard.services import tokens
from shipyard.store.tables import DeploymentRow
from tests.support.asgi_server import at_once, post, serving
from tests.support.runtime import first_candidate, memory_runtime, shop_repo, shop_yaml

CONFIG = shop_yaml("""\
environments:
  - name: staging
    target: {kind: memory}
""")
ADA = Actor("ada", Role.DEPLOYER)
DEPLOYS = "/api/v1/projects/shop/deployments"
pytestmark = pytest.mark.slow


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def shop(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[tuple[Runtime, str]]:
    with memory_runtime(tmp_path, database_url, clock=clock) as rt:
        candidate = first_candidate(rt, shop_repo(tmp_path, CONFIG), ADA)
        yield rt, candidate


def deployments_of(rt: Runtime, candidate: str) -> int:
    with rt.engine.connect() as conn:
        q = select(func.count()).where(DeploymentRow.candidate == candidate)
        return int(conn.scalar(q) or 0)


def test_a_retried_deploy_with_its_key_gets_the_first_answer_and_deploys_once(
    shop: tuple[Runtime, str],
) -> None:
    rt, candidate = shop
    me = tokens.create_token(rt.services, SYSTEM, user="ada", role="deployer")[1]
    body = {"candidate": candidate, "environment": "staging"}
    with serving(rt.services) as base:
        first = post(base, DEPLOYS, me, body, **{"Idempotency-Key": "deploy-1"})
        again = post(base, DEPLOYS, me, body, **{"Idempotency-Key": "deploy-1"})
        without = post(base, DEPLOYS, me, body)
    assert first.status_code == 201
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert without.status_code == 409  # without a key the retry is a second request, refused
    assert deployments_of(rt, candidate) == 1


def test_the_same_key_on_another_body_is_refused_and_changes_nothing(
    shop: tuple[Runtime, str],
) -> None:
    rt, candidate = shop
    me = tokens.create_token(rt.services, SYSTEM, user="ada", role="deployer")[1]
    with serving(rt.services) as base:
        post(
            base,
            DEPLOYS,
            me,
            {"candidate": "nope", "environment": "staging"},
            **{"Idempotency-Key": "k"},
        )
        other = post(
            base,
            DEPLOYS,
            me,
            {"candidate": candidate, "environment": "staging"},
            **{"Idempotency-Key": "k"},
        )
        bad_key = post(base, DEPLOYS, me, {}, **{"Idempotency-Key": "x" * 300})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert "was used for another request" in other.json()["detail"]
    assert bad_key.status_code == 422
    assert deployments_of(rt, candidate) == 0


def test_twenty_parallel_deploys_with_one_key_create_one_deployment(
    shop: tuple[Runtime, str],
) -> None:
    rt, candidate = shop
    me = tokens.create_token(rt.services, SYSTEM, user="ada", role="deployer")[1]
    body = {"candidate": candidate, "environment": "staging"}
    with serving(rt.services) as base:
        answers = at_once(
            [lambda: post(base, DEPLOYS, me, body, **{"Idempotency-Key": "once"})] * 20
        )
    codes = Counter(r.status_code for r in answers)
    assert set(codes) <= {201, 409}, codes  # 409: the first request with the key still ran
    assert codes[201] >= 1
    assert len({r.json()["id"] for r in answers if r.status_code == 201}) == 1
    assert deployments_of(rt, candidate) == 1


def test_keys_are_per_caller_and_expire_after_a_day(
    shop: tuple[Runtime, str], clock: FixedClock
) -> None:
    rt, candidate = shop
    ada = tokens.create_token(rt.services, SYSTEM, user="ada", role="deployer")[1]
    eve = tokens.create_token(rt.services, SYSTEM, user="eve", role="deployer")[1]
    body = {"candidate": candidate, "environment": "nowhere"}
    with serving(rt.services) as base:
        first = post(base, DEPLOYS, ada, body, **{"Idempotency-Key": "k"})
        theirs = post(
            base,
            DEPLOYS,
            eve,
            {"candidate": candidate, "environment": "staging"},
            **{"Idempotency-Key": "k"},
        )
        clock.advance(hours=25)
        later = post(
            base,
            DEPLOYS,
            ada,
            {"candidate": candidate, "environment": "staging"},
            **{"Idempotency-Key": "k"},
        )
    assert first.status_code == 404  # a refusal is an answer too: it is kept and replayed
    assert theirs.status_code == 201  # another caller's key of the same name is another key
    assert later.status_code == 409  # expired: a new request (refused: eve's is live)
    assert "already being deployed" in later.json()["detail"]


def test_the_openapi_names_the_header_on_every_post(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from shipyard.api.app import create_app

    with memory_runtime(tmp_path) as rt:
        schema = TestClient(create_app(rt.services)).get("/openapi.json").json()
    posts = [ops["post"] for ops in schema["paths"].values() if "post" in ops]
    assert posts
    for op in posts:
        assert "Idempotency-Key" in [p["name"] for p in op.get("parameters", [])]
