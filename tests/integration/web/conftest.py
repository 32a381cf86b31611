"""A wired runtime with one project (staging → production behind one approval) and a TestClient.

The memory target stands in for the machines; the dashboard only reads what the services say."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipyard.api.app import create_app
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor, Role
from shipyard.domain.deployments import Deployment
from shipyard.services import deployments
from tests.support.gitrepo import GitRepo
from tests.support.runtime import first_candidate, memory_runtime, role_tokens, shop_yaml

CONFIG = shop_yaml("""\
environments:
  - name: staging
    target: {kind: memory}
  - name: production
    target: {kind: memory}
    requires: [staging]
    approval: {required: 1, approvers: ["role:approver"]}
""")

ADA = Actor("ada", Role.DEPLOYER)


@dataclass
class Shop:
    """The running example: rc.1 serves staging and waits for approval to go to production."""

    runtime: Runtime
    tokens: dict[str, str]  # role name -> a token of that role
    candidate: str
    waiting: Deployment

    def client(self, role: str | None = None) -> TestClient:
        return client_of(self.runtime, None if role is None else self.tokens[role])

    def drain(self) -> None:
        self.runtime.worker().drain()


NONCE = re.compile(r'name="nonce" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def client_of(runtime: Runtime, token: str | None = None) -> TestClient:
    """A TestClient of the runtime's app, logged in with ``token`` when given."""
    client = TestClient(create_app(runtime.services), follow_redirects=False)
    if token is not None:
        login(client, token)
    return client


def login(client: TestClient, token: str) -> None:
    page = client.get("/ui/login")
    nonce = NONCE.search(page.text)
    assert nonce, page.text
    done = client.post("/ui/login", data={"token": token, "nonce": nonce.group(1), "next": "/ui"})
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/ui")


def csrf_of(client: TestClient, page: str = "/ui") -> str:
    found = CSRF.search(client.get(page).text)
    assert found
    return found.group(1)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    repo = GitRepo(tmp_path / "shop")
    repo.commit("chore: set up shipyard", {"shipyard.yaml": CONFIG, "app.py": "PRICE = 10\n"})
    repo.commit("feat: discounts (#2)", {"app.py": "PRICE = 10\nDISCOUNT = 0.5\n"})
    with memory_runtime(tmp_path) as rt:
        svc = rt.services
        made = role_tokens(svc)
        rc = first_candidate(rt, repo, ADA)
        deployments.deploy(svc, ADA, "shop", rc, "staging")
        rt.worker().drain()
        waiting = deployments.deploy(svc, ADA, "shop", rc, "production")
        yield Shop(rt, made, rc, waiting)
