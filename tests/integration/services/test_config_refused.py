"""Configuration a server cannot run is refused when it is read (project add, cut, the API),
with its file and line, never first at deploy; the test-only memory kind is never offered."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipyard.api.app import create_app
from shipyard.config.jsonschema import json_schema
from shipyard.domain.auth import SYSTEM, Actor, Role
from shipyard.errors import ConfigError
from shipyard.services import projects, releases
from tests.support.runtime import memory_runtime, role_tokens, shop_repo, shop_yaml

ADA = Actor("ada", Role.DEPLOYER)
LOKAL = shop_yaml("environments:\n  - name: staging\n    target: {kind: lokal}\n")
ROUTED = shop_yaml(
    "environments:\n  - name: production\n    target: {kind: local, start: x}\n"
    "    router: {port: 18080}\n"
)


def test_target_kind_lokal_is_refused_at_project_add_without_offering_memory(
    tmp_path: Path,
) -> None:
    with memory_runtime(tmp_path) as rt:
        repo = shop_repo(tmp_path, LOKAL)
        with pytest.raises(ConfigError) as caught:
            projects.add_project(rt.services, SYSTEM, str(repo.path))
        assert str(caught.value) == (
            "shipyard.yaml:8: environments[0].target.kind: "
            "unknown target kind 'lokal'; known: local, command"
        )


def test_target_kind_lokal_is_refused_by_the_api_as_a_problem(tmp_path: Path) -> None:
    with memory_runtime(tmp_path) as rt:
        admin = role_tokens(rt.services)["admin"]
        repo = shop_repo(tmp_path, LOKAL)
        answer = TestClient(create_app(rt.services)).post(
            "/api/v1/projects",
            json={"source": str(repo.path)},
            headers={"Authorization": f"Bearer {admin}"},
        )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == "config_invalid"
    assert body["details"] == {
        "file": "shipyard.yaml",
        "line": 8,
        "field": "environments[0].target.kind",
        "reason": "unknown target kind 'lokal'; known: local, command",
    }


def test_target_kind_lokal_added_later_is_refused_at_cut(tmp_path: Path) -> None:
    with memory_runtime(tmp_path) as rt:
        repo = shop_repo(tmp_path, shop_yaml("environments:\n  - name: staging\n"))
        projects.add_project(rt.services, SYSTEM, str(repo.path))
        repo.commit("chore: a typo", {"shipyard.yaml": LOKAL})
        with pytest.raises(ConfigError, match=r"^shipyard.yaml:8: .*'lokal'"):
            releases.cut_release(rt.services, ADA, "shop")


def test_the_json_schema_offers_no_memory_kind() -> None:
    text = json.dumps(json_schema())
    assert "memory" not in text
    kind = json_schema()["$defs"]["Target"]["properties"]["kind"]
    assert kind["enum"] == ["local", "command"]


def test_a_server_without_the_test_plugin_knows_no_memory_kind() -> None:
    code = (
        "from shipyard.adapters.targets.registry import TARGETS\n"
        "from shipyard.adapters.routers.registry import ROUTERS\n"
        "from shipyard.config.loader import load_config\n"
        "from shipyard.errors import ConfigError\n"
        "print(sorted(TARGETS), sorted(ROUTERS))\n"
        "try:\n"
        "    load_config('environments:\\n  - name: a\\n    target: {kind: memory}\\n')\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout
    assert out.splitlines() == [
        "['command', 'local'] ['haproxy']",
        "shipyard.yaml:3: environments[0].target.kind: "
        "unknown target kind 'memory'; known: local, command",
    ]


@pytest.fixture
def no_haproxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with git (the server needs it) and no haproxy, as on a fresh host."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git
    (bin_dir / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.usefixtures("no_haproxy")
def test_a_router_whose_haproxy_is_missing_is_refused_at_project_add(tmp_path: Path) -> None:
    with memory_runtime(tmp_path) as rt:
        repo = shop_repo(tmp_path, ROUTED)
        with pytest.raises(ConfigError) as caught:
            projects.add_project(rt.services, SYSTEM, str(repo.path))
    assert str(caught.value) == (
        "shipyard.yaml:9: environments[0].router: the haproxy router needs 'haproxy', "
        "which is not installed on the server"
    )
    assert caught.value.hint == "install it on the server: apt-get install haproxy"


@pytest.mark.usefixtures("no_haproxy")
def test_a_router_added_later_without_haproxy_is_refused_at_cut(tmp_path: Path) -> None:
    with memory_runtime(tmp_path) as rt:
        repo = shop_repo(tmp_path, shop_yaml("environments:\n  - name: production\n"))
        projects.add_project(rt.services, SYSTEM, str(repo.path))
        repo.commit("chore: route production", {"shipyard.yaml": ROUTED})
        with pytest.raises(ConfigError, match="needs 'haproxy'"):
            releases.cut_release(rt.services, ADA, "shop")
        with rt.services.uow() as uow:
            project = uow.projects.get("shop")
            assert project is not None and not uow.releases.list_releases(project)


def test_a_flag_for_an_undeclared_environment_is_refused_by_the_api(tmp_path: Path) -> None:
    with memory_runtime(tmp_path) as rt:
        admin = role_tokens(rt.services)["admin"]
        repo = shop_repo(tmp_path, shop_yaml("environments:\n  - name: staging\n"))
        projects.add_project(rt.services, SYSTEM, str(repo.path))
        client = TestClient(create_app(rt.services))
        auth = {"Authorization": f"Bearer {admin}"}
        url = "/api/v1/projects/shop/environments/{}/flags"
        refused = client.post(url.format("nope"), json={"key": "checkout"}, headers=auth)
        made = client.post(url.format("staging"), json={"key": "checkout"}, headers=auth)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        "shipyard.yaml:6: environments: no environment named 'nope'; declared: staging"
    )
    assert made.status_code == 201
