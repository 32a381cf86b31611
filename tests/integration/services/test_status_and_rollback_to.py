"""What status reads and what `rollback --to` accepts, through the services on both databases.

Regressions of issue 13: a vetoed candidate read `built` / deployable, an environment running it
said nothing, and a rollback could not name the candidate to go back to."""

from __future__ import annotations

import pytest

from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor
from shipyard.domain.deployments import DeploymentMode, DeploymentState
from shipyard.errors import ErrorCode, NotFoundError, RefusedError
from shipyard.ports.targets import Identity
from shipyard.services import deployments, releases
from tests.integration.services.test_deployments_service import cut, run, setup_project, state
from tests.support.gitrepo import GitRepo

ENVS = """\
environments:
  - name: staging
    target: {kind: memory}
"""


@pytest.fixture(autouse=True)
def _clean_memory_target() -> None:
    MemoryTarget.reset()


def _three_in_staging(rt: Runtime, repo: GitRepo, ada: Actor) -> tuple[str, str, str]:
    """rc.1 and rc.2 succeeded in staging one after the other; rc.3 is built, never deployed."""
    svc = rt.services
    rc1 = cut(rt, ada)
    names = [rc1]
    for n in (2, 3):
        fix = repo.commit(f"fix: step {n} (#{n})", {"app.py": f"N = {n}\n"})
        names.append(releases.pick(svc, ada, "shop", "0.1.0", [fix]).name)
        run(rt)
    for name in names[:2]:
        deployments.deploy(svc, ada, "shop", name, "staging")
        run(rt)
    return names[0], names[1], names[2]


def test_vetoed_candidate_reads_vetoed_not_deployable_and_status_flags_it(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin, ENVS)
    _, rc2, _ = _three_in_staging(runtime, repo, ada)

    deployments.veto(svc, ada, "shop", rc2, reason="corrupts carts")

    shown = next(
        c for c in releases.show_release(svc, ada, "shop", "0.1.0").candidates if c.name == rc2
    )
    assert shown.veto is not None
    assert (shown.shown_status, shown.deployable) == ("vetoed", False)
    assert (shown.veto.by, shown.veto.reason) == (ada.user, "corrupts carts")
    _, listed = releases.list_releases(svc, ada, "shop")
    [(_, candidates)] = listed
    assert [c.name for c in candidates if c.veto] == [rc2]
    _, [row] = deployments.status(svc, ada, "shop")
    assert row.candidate == rc2 and set(row.vetoed) == {rc2}
    assert row.vetoed[rc2].reason == "corrupts carts"


def test_status_names_what_answers_and_counts_it_against_the_configuration(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin, ENVS)
    rc1, rc2, _ = _three_in_staging(runtime, repo, ada)
    MemoryTarget.live[("shop", "staging")] = {rc1}  # somebody put rc.1 back by hand

    _, [row] = deployments.status(svc, ada, "shop")

    assert row.reading is not None
    assert (row.candidate, row.reading.recorded, row.reading.disagrees) == (rc1, rc2, True)
    assert row.reading.identity is Identity.VERIFIED
    assert row.reading.summary == "1 configured, 1 healthy"

    MemoryTarget.live[("shop", "staging")] = set()  # nothing answers at all
    _, [row] = deployments.status(svc, ada, "shop")
    assert row.reading is not None
    assert (row.candidate, row.reading.identity, row.reading.summary) == (
        rc2,
        None,
        "1 configured, 0 healthy",
    )


def test_rollback_to_a_named_earlier_candidate(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin, ENVS)
    rc1, rc2, _ = _three_in_staging(runtime, repo, ada)

    back = deployments.rollback(svc, ada, "shop", "staging", to=rc1)

    assert (back.mode, back.candidate, back.from_candidate) == (DeploymentMode.ROLLBACK, rc1, rc2)
    run(runtime)
    assert state(runtime, back.id) is DeploymentState.SUCCEEDED
    assert MemoryTarget.live[("shop", "staging")] == {rc1}


@pytest.mark.parametrize("which", ["never-succeeded", "unknown", "vetoed"])
def test_rollback_to_refuses_what_it_must_not_go_back_to_and_changes_nothing(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor, which: str
) -> None:
    svc = runtime.services
    setup_project(runtime, repo, admin, ENVS)
    rc1, rc2, rc3 = _three_in_staging(runtime, repo, ada)
    if which == "vetoed":
        deployments.veto(svc, ada, "shop", rc1, reason="leaks")
    before = deployments.history(svc, ada, "shop", None)
    name = {"never-succeeded": rc3, "unknown": "9.9.9-rc.1", "vetoed": rc1}[which]

    with pytest.raises((RefusedError, NotFoundError)) as err:
        deployments.rollback(svc, ada, "shop", "staging", to=name)

    expected = {
        "never-succeeded": (ErrorCode.GATE_CLOSED, f"back to {rc3}: it never succeeded there"),
        "unknown": (ErrorCode.NOT_FOUND, "9.9.9-rc.1 of shop not found"),
        "vetoed": (ErrorCode.VETOED, "it is vetoed by ada: leaks"),
    }[which]
    assert err.value.code is expected[0] and expected[1] in err.value.message
    assert deployments.history(svc, ada, "shop", None) == before
    assert MemoryTarget.live[("shop", "staging")] == {rc2}
