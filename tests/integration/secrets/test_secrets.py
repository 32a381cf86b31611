"""Secrets: set, listed by name, removed; sealed in the database, never shown, never logged."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from shipyard.api.app import create_app
from shipyard.bootstrap import Runtime, bootstrap
from shipyard.domain.auth import SYSTEM, Actor, Role
from shipyard.errors import IntegrityError, InvalidError, NotFoundError, PermissionDenied
from shipyard.services import projects, secrets, tokens
from shipyard.services.releases import get_project
from shipyard.services.secrets import environment_secrets
from tests.support.gitrepo import GitRepo
from tests.support.runtime import SHOP

ADA = Actor("ada", Role.DEPLOYER)
VERA = Actor("vera", Role.VIEWER)
BOB = Actor("bob", Role.APPROVER)
VALUE = "sk_live_4242-very-secret-value"


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = bootstrap(tmp_path / "data", database_url)
    repo = GitRepo(tmp_path / "shop")
    repo.commit("chore: shipyard", {"shipyard.yaml": SHOP, "app.py": "V = 1\n"})
    projects.add_project(runtime.services, SYSTEM, str(repo.path))
    yield runtime
    runtime.close()


def _opened(rt: Runtime, env: str = "production") -> dict[str, str]:
    with rt.services.uow() as uow:
        p = get_project(uow, "shop")
        return environment_secrets(rt.services, uow, p.id, "shop", env)


def test_a_deployer_sets_a_secret_and_it_opens_only_for_its_processes(rt: Runtime) -> None:
    info = secrets.set_secret(rt.services, ADA, "shop", "production", "STRIPE_KEY", VALUE)

    assert (info.name, info.set_by) == ("STRIPE_KEY", "ada")
    assert _opened(rt) == {"STRIPE_KEY": VALUE}
    assert _opened(rt, "staging") == {}
    listed = secrets.list_secrets(rt.services, VERA, "shop", "production")
    assert [(s.name, s.set_by) for s in listed] == [("STRIPE_KEY", "ada")]
    assert not hasattr(listed[0], "value")


def test_the_database_holds_only_ciphertext(rt: Runtime) -> None:
    secrets.set_secret(rt.services, ADA, "shop", "production", "STRIPE_KEY", VALUE)

    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, sealed FROM secrets")).all()
        dump = json.dumps([list(map(str, r)) for r in conn.execute(text("SELECT * FROM secrets"))])
    [(name, sealed)] = rows
    assert name == "STRIPE_KEY"
    assert VALUE.encode() not in bytes(sealed)
    assert VALUE not in dump
    assert len(bytes(sealed)) >= len(VALUE) + 12 + 16  # nonce and tag beside the ciphertext


def test_a_sealed_value_copied_to_another_name_does_not_open(rt: Runtime) -> None:
    """The project, environment and name are the associated data: a database writer who moves
    a row to another place gets an integrity error, not the value under another name."""
    secrets.set_secret(rt.services, ADA, "shop", "production", "STRIPE_KEY", VALUE)
    with rt.engine.begin() as conn:
        conn.execute(text("UPDATE secrets SET environment = 'staging'"))

    with pytest.raises(IntegrityError, match="does not open"):
        _opened(rt, "staging")


def test_the_audit_log_names_the_secret_never_its_value(rt: Runtime) -> None:
    secrets.set_secret(rt.services, ADA, "shop", "production", "STRIPE_KEY", VALUE)
    secrets.set_secret(rt.services, ADA, "shop", "production", "STRIPE_KEY", VALUE + "2")
    secrets.remove_secret(rt.services, ADA, "shop", "production", "STRIPE_KEY")

    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, subject, payload FROM events")).all()
    mine = [(k, s, json.loads(p) if isinstance(p, str) else p) for k, s, p in rows if "secret" in k]
    assert [(k, s) for k, s, _ in mine] == [
        ("secret.set", "production/STRIPE_KEY"),
        ("secret.set", "production/STRIPE_KEY"),
        ("secret.removed", "production/STRIPE_KEY"),
    ]
    assert all(p["name"] == "STRIPE_KEY" for _, _, p in mine)
    assert VALUE not in json.dumps([list(map(str, r)) for r in rows])
    assert _opened(rt) == {}


@pytest.mark.parametrize("who", [VERA, BOB])
def test_viewers_and_approvers_may_not_set_or_remove(rt: Runtime, who: Actor) -> None:
    with pytest.raises(PermissionDenied):
        secrets.set_secret(rt.services, who, "shop", "production", "STRIPE_KEY", VALUE)
    secrets.set_secret(rt.services, ADA, "shop", "production", "STRIPE_KEY", VALUE)
    with pytest.raises(PermissionDenied):
        secrets.remove_secret(rt.services, who, "shop", "production", "STRIPE_KEY")
    assert _opened(rt) == {"STRIPE_KEY": VALUE}


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("SHIPYARD_DATABASE_URL", "x", "reserved"),
        ("1ABC", "x", "identifier"),
        ("A-B", "x", "identifier"),
        ("A" * 129, "x", "identifier"),
        ("OK", "a\0b", "NUL"),
        ("OK", "x" * 40_000, "at most"),
    ],
)
def test_bad_names_and_values_are_refused_and_change_nothing(
    rt: Runtime, name: str, value: str, why: str
) -> None:
    with pytest.raises(InvalidError, match=why):
        secrets.set_secret(rt.services, ADA, "shop", "production", name, value)
    assert secrets.list_secrets(rt.services, ADA, "shop", "production") == []


@pytest.mark.parametrize("environment", ["Production", "prod\0", "../x", "p" * 64])
def test_a_bad_environment_name_is_refused(rt: Runtime, environment: str) -> None:
    with pytest.raises(InvalidError, match="not an environment name"):
        secrets.set_secret(rt.services, ADA, "shop", environment, "OK", VALUE)


def test_removing_a_missing_secret_is_not_found(rt: Runtime) -> None:
    with pytest.raises(NotFoundError, match="no secret 'NOPE'"):
        secrets.remove_secret(rt.services, ADA, "shop", "production", "NOPE")


def test_the_key_file_is_made_once_0600_and_shared_by_replicas(
    rt: Runtime, tmp_path: Path, database_url: str
) -> None:
    key = tmp_path / "data" / "secrets.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    before = key.read_bytes()
    secrets.set_secret(rt.services, ADA, "shop", "production", "STRIPE_KEY", VALUE)

    replica = bootstrap(tmp_path / "replica", database_url, secrets_key_file=key)
    try:
        assert _opened(replica) == {"STRIPE_KEY": VALUE}
    finally:
        replica.close()
    assert key.read_bytes() == before
    stranger = bootstrap(tmp_path / "stranger", database_url)  # its own, new key
    try:
        with pytest.raises(IntegrityError, match="another key file"):
            _opened(stranger)
    finally:
        stranger.close()


def test_the_api_takes_a_value_and_never_gives_it_back(rt: Runtime) -> None:
    admin = tokens.create_token(rt.services, SYSTEM, user="root", role="admin")[1]
    viewer = tokens.create_token(rt.services, SYSTEM, user="vera", role="viewer")[1]
    client = TestClient(create_app(rt.services))
    url = "/api/v1/projects/shop/environments/production/secrets"
    as_admin = {"Authorization": f"Bearer {admin}"}

    put = client.put(f"{url}/STRIPE_KEY", json={"value": VALUE}, headers=as_admin)
    assert put.status_code == 200, put.text
    assert VALUE not in put.text and put.json()["name"] == "STRIPE_KEY"
    got = client.get(url, headers={"Authorization": f"Bearer {viewer}"})
    assert got.status_code == 200
    assert [s["name"] for s in got.json()] == ["STRIPE_KEY"] and VALUE not in got.text
    refused = client.put(
        f"{url}/STRIPE_KEY", json={"value": "x"}, headers={"Authorization": f"Bearer {viewer}"}
    )
    assert refused.status_code == 403
    bad = client.put(f"{url}/SHIPYARD_TOKEN", json={"value": "x"}, headers=as_admin)
    assert bad.status_code == 422 or bad.status_code == 400, bad.text
    events = client.get("/api/v1/events", headers=as_admin)
    assert VALUE not in events.text
    assert client.delete(f"{url}/STRIPE_KEY", headers=as_admin).status_code == 204
    assert client.get(url, headers=as_admin).json() == []
