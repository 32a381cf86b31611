"""A wired runtime on the memory target, for the integration tests, and what they set up in it.

    with memory_runtime(tmp_path, database_url, clock=clock, router=MemoryRouter()) as rt:
        repo = shop_repo(tmp_path, CONFIG)  # the test's own shipyard.yaml
        made = role_tokens(rt.services)  # {"viewer": "shy_…", …}

Each test still writes its own shipyard.yaml: the policy it runs is part of what it asserts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime, bootstrap
from shipyard.domain.auth import SYSTEM, Actor, Role
from shipyard.ports.clock import Clock
from shipyard.services import projects, releases, tokens
from shipyard.services.context import Services
from tests.support.gitrepo import GitRepo

# the shipyard.yaml lines every memory-target test shares (see shop_yaml)
SHOP = """\
project: shop
versioning: {scheme: semver, initial: 1.0.0}
build:
  command: tar czf "$SHIPYARD_ARTIFACTS_DIR/app.tar.gz" app.py
  artifacts: ["*.tar.gz"]
"""


def shop_yaml(rest: str) -> str:
    """The shop's shipyard.yaml: ``SHOP`` then ``rest``, the test's own environments, policies
    and checks (what its assertions depend on, so it stays in the test)."""
    return SHOP + rest


# one user per role, as the dashboard tests log in
ROLE_USERS = (
    ("vera", Role.VIEWER),
    ("ada", Role.DEPLOYER),
    ("bob", Role.APPROVER),
    ("root", Role.ADMIN),
)


@contextmanager
def memory_runtime(
    tmp_path: Path,
    database_url: str | None = None,
    *,
    clock: Clock | None = None,
    router: MemoryRouter | None = None,
) -> Iterator[Runtime]:
    """A runtime under ``tmp_path/data`` (SQLite in ``tmp_path`` unless ``database_url``).

    The memory target's machines are reset before and after; ``router``, when given, serves every
    environment's router (the memory router standing in for HAProxy)."""
    MemoryTarget.reset()
    url = database_url or f"sqlite:///{tmp_path / 'shipyard.db'}"
    rt = bootstrap(tmp_path / "data", url, clock=clock)
    if router is not None:
        rt.services = replace(
            rt.services, routers=lambda kind: router, counters=lambda kind: router
        )
    try:
        yield rt
    finally:
        rt.close()
        MemoryTarget.reset()


def role_tokens(svc: Services) -> dict[str, str]:
    """A token for each of ``ROLE_USERS``: role name -> token."""
    return {
        role.value: tokens.create_token(svc, SYSTEM, user=user, role=role.value)[1]
        for user, role in ROLE_USERS
    }


def shop_repo(tmp_path: Path, config: str, app: str = "V = 1\n") -> GitRepo:
    """The ``shop`` repository: one commit with ``config`` as its shipyard.yaml and an app.py."""
    repo = GitRepo(tmp_path / "shop")
    repo.commit("chore: shipyard", {"shipyard.yaml": config, "app.py": app})
    return repo


def first_candidate(rt: Runtime, repo: GitRepo, by: Actor) -> str:
    """Register ``repo`` (as the system), cut its first release as ``by`` and build it: the
    candidate's name."""
    projects.add_project(rt.services, SYSTEM, str(repo.path))
    _, rc = releases.cut_release(rt.services, by, "shop")
    rt.worker().drain()
    return rc.name
