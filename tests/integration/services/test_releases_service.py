"""Release use cases on real git and real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor
from shipyard.domain.releases import CandidateStatus
from shipyard.errors import ConfigError, ConflictError, ErrorCode, NotFoundError, RefusedError
from shipyard.services import projects, releases
from tests.support.gitrepo import GitRepo


def build_all(rt: Runtime) -> None:
    rt.worker().drain()


def test_cut_then_build_once(runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor) -> None:
    projects.add_project(runtime.services, admin, str(repo.path))
    release, rc1 = releases.cut_release(runtime.services, ada, "shop")
    assert (release.version, rc1.name, rc1.status) == (
        "1.0.0",
        "1.0.0-rc.1",
        CandidateStatus.BUILDING,
    )
    build_all(runtime)
    build_all(runtime)  # nothing left: built exactly once
    _, [(_, [built])] = releases.list_releases(runtime.services, ada, "shop")
    assert built.status is CandidateStatus.BUILT
    assert [a.name for a in built.artifacts] == ["app.tar.gz"]
    with runtime.services.uow() as uow:
        kinds = [e.kind for e in uow.events.list()]
    assert kinds.count("candidate.built") == 1


def test_refusals_change_nothing(runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor) -> None:
    svc = runtime.services
    projects.add_project(svc, admin, str(repo.path))
    releases.cut_release(svc, ada, "shop")
    repo.git("branch", "topic", "HEAD~1")
    repo.checkout("topic")
    off_mainline = repo.commit("feat: experiment", {"x.txt": "x"})
    repo.checkout("main")
    before = repo.snapshot()
    with svc.uow() as uow:
        events_before = len(uow.events.list())

    with pytest.raises(NotFoundError) as unknown:
        releases.cut_release(svc, ada, "shop", sha="0123456789abcdef")
    assert unknown.value.code is ErrorCode.UNKNOWN_SHA
    with pytest.raises(RefusedError) as off:
        releases.cut_release(svc, ada, "shop", sha=off_mainline)
    assert off.value.code is ErrorCode.NOT_ON_MAINLINE
    with pytest.raises(ConflictError) as exists:
        releases.cut_release(svc, ada, "shop", version="1.0.0")
    assert exists.value.code is ErrorCode.VERSION_EXISTS

    assert repo.snapshot() == before
    with svc.uow() as uow:
        assert len(uow.events.list()) == events_before


def test_pick_conflict_leaves_release_unchanged(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    projects.add_project(svc, admin, str(repo.path))
    releases.cut_release(svc, ada, "shop")
    repo.commit("refactor: rename price", {"app.py": "COST = 10\nDISCOUNT = 0.5\n"})
    clash = repo.commit("fix: cheaper (#4)", {"app.py": "COST = 9\nDISCOUNT = 0.5\n"})
    before = repo.snapshot()
    with pytest.raises(ConflictError) as err:
        releases.pick(svc, ada, "shop", "1.0.0", [clash])
    assert err.value.code is ErrorCode.PICK_CONFLICT
    assert err.value.details["files"] == ["app.py"]
    assert "conflicts in: app.py" in err.value.message
    assert repo.snapshot() == before
    view = releases.show_release(svc, ada, "shop", "1.0.0")
    assert [c.name for c in view.candidates] == ["1.0.0-rc.1"]


def test_pick_mints_next_candidate_and_refuses_a_repeat(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    projects.add_project(svc, admin, str(repo.path))
    release, _ = releases.cut_release(svc, ada, "shop")
    fix = repo.commit(
        "fix: discount was 50% (#3)", {"app.py": "PRICE = 10\nDISCOUNT = 0.1\n"}, author="Bob"
    )
    rc2 = releases.pick(svc, ada, "shop", "1.0.0", [fix])
    assert rc2.name == "1.0.0-rc.2" and rc2.picks[0].source_sha == fix
    assert repo.head("release/1.0.0") == rc2.sha
    assert repo.git("log", "-1", "--format=%an|%B", rc2.sha).startswith(
        "Bob|fix: discount was 50% (#3)"
    )
    assert f"(cherry picked from commit {fix})" in repo.git("log", "-1", "--format=%B", rc2.sha)
    before = repo.snapshot()
    with pytest.raises(ConflictError) as again:
        releases.pick(svc, ada, "shop", "1.0.0", [fix])
    assert again.value.code is ErrorCode.ALREADY_PICKED
    with pytest.raises(ConflictError) as on_branch:  # an ancestor of the release is on it already
        releases.pick(svc, ada, "shop", "1.0.0", [release.base_sha])
    assert on_branch.value.code is ErrorCode.ALREADY_PICKED
    with pytest.raises(NotFoundError) as unknown:
        releases.pick(svc, ada, "shop", "1.0.0", [fix, "deadbeef"])
    assert unknown.value.code is ErrorCode.UNKNOWN_SHA
    assert unknown.value.message == "unknown commit 'deadbeef'"
    assert repo.snapshot() == before

    view = releases.show_release(svc, ada, "shop", "1.0.0")
    assert [(e.subject, e.picked, e.pr) for e in view.changelog][:2] == [
        ("fix: discount was 50% (#3)", True, 3),
        ("feat: discounts (#2)", False, 2),
    ]


def test_each_candidate_keeps_its_own_picks_and_artifacts(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    projects.add_project(svc, admin, str(repo.path))
    releases.cut_release(svc, ada, "shop")
    one = repo.commit("fix: one (#5)", {"one.py": "1\n"})
    two = repo.commit("fix: two (#6)", {"two.py": "2\n"})
    rc2 = releases.pick(svc, ada, "shop", "1.0.0", [one])
    build_all(runtime)
    rc3 = releases.pick(svc, ada, "shop", "1.0.0", [two])
    assert [p.source_sha for p in rc2.picks] == [one] and rc2.artifacts == ()
    assert [p.source_sha for p in rc3.picks] == [two]
    view = releases.show_release(svc, ada, "shop", "1.0.0")
    assert [(c.name, [p.source_sha for p in c.picks]) for c in view.candidates] == [
        ("1.0.0-rc.1", []),
        ("1.0.0-rc.2", [one]),
        ("1.0.0-rc.3", [two]),
    ]
    assert [[a.name for a in c.artifacts] for c in view.candidates] == [
        ["app.tar.gz"],
        ["app.tar.gz"],
        [],
    ]
    assert view.candidates[2] == rc3
    assert [(e.pr, e.picked) for e in view.changelog] == [
        (6, True),
        (5, True),
        (2, False),
        (None, False),
    ]


def test_changelog_since_the_previous_release_is_capped(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = runtime.services
    projects.add_project(svc, admin, str(repo.path))
    releases.cut_release(svc, ada, "shop")
    for n in (5, 6, 7):
        repo.commit(f"feat: step {n} (#{n})", {f"s{n}.py": f"S = {n}\n"})
    releases.cut_release(svc, ada, "shop")
    view = releases.show_release(svc, ada, "shop", "1.1.0")
    assert view.previous_version == "1.0.0" and not view.changelog_truncated
    assert [e.pr for e in view.changelog] == [7, 6, 5]
    monkeypatch.setattr(releases, "CHANGELOG_LIMIT", 2)
    view = releases.show_release(svc, ada, "shop", "1.1.0")
    assert view.changelog_truncated
    assert [e.pr for e in view.changelog] == [7, 6]
    monkeypatch.setattr(releases, "CHANGELOG_LIMIT", 3)
    assert not releases.show_release(svc, ada, "shop", "1.1.0").changelog_truncated


def test_a_later_release_must_carry_earlier_picks(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    """The fix picked into 1.0.0 was made on a side branch: 1.1.0 cut without it is refused."""
    svc = runtime.services
    projects.add_project(svc, admin, str(repo.path))
    releases.cut_release(svc, ada, "shop")
    repo.git("branch", "hotfix", "main")
    repo.checkout("hotfix")
    fix = repo.commit("fix: overflow (#9)", {"limits.py": "MAX = 10\n"})
    repo.checkout("main")
    releases.pick(svc, ada, "shop", "1.0.0", [fix])
    repo.commit("feat: wishlist (#10)", {"wish.py": "W = 1\n"})

    with pytest.raises(RefusedError) as missing:
        releases.cut_release(svc, ada, "shop")
    assert missing.value.code is ErrorCode.MISSING_PICK
    assert "1.0.0: " + fix[:12] in missing.value.message
    assert repo.git("branch", "--list", "release/1.1.0") == ""

    allowed, _ = releases.cut_release(svc, ada, "shop", allow_missing_pick=True)
    assert allowed.version == "1.1.0"

    # the same change landing on the mainline as a different commit counts (patch-id)
    repo.commit("fix: overflow, on main (#11)", {"limits.py": "MAX = 10\n"})
    carried, _ = releases.cut_release(svc, ada, "shop")
    assert carried.version == "1.2.0"


def test_a_malformed_config_at_the_commit_is_refused(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    projects.add_project(svc, admin, str(repo.path))
    repo.commit("chore: oops", {"shipyard.yaml": "versioning:\n  schem: calver\n"})
    with pytest.raises(ConfigError) as err:
        releases.cut_release(svc, ada, "shop")
    assert err.value.message == "shipyard.yaml:2: versioning.schem: unknown field"
    assert repo.git("branch", "--list", "release/*") == ""


def test_a_failed_build_is_never_deployable(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    svc = runtime.services
    repo.commit("build: break it", {"shipyard.yaml": "build: {command: 'echo boom; exit 3'}\n"})
    projects.add_project(svc, admin, str(repo.path))
    releases.cut_release(svc, ada, "shop", version="2.0.0")
    build_all(runtime)
    _, [(_, [failed])] = releases.list_releases(svc, ada, "shop")
    assert failed.status is CandidateStatus.FAILED and not failed.deployable
    assert failed.reason == "build command exited with status 3"
    assert failed.build_log is not None
    with open(failed.build_log) as fh:
        assert "boom" in fh.read()


def test_calver_and_a_project_registered_by_url(
    runtime: Runtime, repo: GitRepo, admin: Actor, ada: Actor
) -> None:
    """A URL is mirrored into the data dir; release branches live in the mirror."""
    svc = runtime.services
    repo.commit("chore: calver", {"shipyard.yaml": "project: cal\nversioning: {scheme: calver}\n"})
    projects.add_project(svc, admin, f"file://{repo.path}")
    today = svc.clock.now().strftime("%Y.%m.%d")
    first, rc = releases.cut_release(svc, ada, "cal")
    repo.commit("feat: more", {"more.txt": "1"})
    second, _ = releases.cut_release(svc, ada, "cal")
    assert (first.version, second.version) == (today, f"{today}.1")
    assert rc.status is CandidateStatus.AWAITING_ARTIFACTS  # no build command: CI registers
    assert repo.git("branch", "--list", "release/*") == ""  # the user's clone is not written to
