from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.bootstrap import Runtime, bootstrap
from shipyard.domain.auth import Actor, Role
from tests.support.gitrepo import GitRepo
from tests.support.runtime import SHOP

CONFIG = SHOP  # no environments: the service tests add theirs


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    rt = bootstrap(tmp_path / "data", database_url)
    yield rt
    rt.close()


@pytest.fixture
def ada() -> Actor:
    return Actor("ada", Role.DEPLOYER)


@pytest.fixture
def admin() -> Actor:
    return Actor("root", Role.ADMIN)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "shop")
    r.commit("chore: set up shipyard", {"shipyard.yaml": CONFIG, "app.py": "PRICE = 10\n"})
    r.commit("feat: discounts (#2)", {"app.py": "PRICE = 10\nDISCOUNT = 0.5\n"})
    return r
