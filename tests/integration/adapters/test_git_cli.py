"""CliGitRepository against real repositories: results, refusals, and the user's copy untouched."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.adapters.git.cli import CliGitRepository
from shipyard.domain.changelog import build_changelog
from shipyard.errors import AdapterError, ConflictError, ErrorCode, InvalidError, NotFoundError
from shipyard.ports.git import Identity
from tests.support.gitrepo import GitRepoBuilder

BOT = Identity("Release Bot", "bot@example.com")


@pytest.fixture
def repo(tmp_path: Path) -> GitRepoBuilder:
    r = GitRepoBuilder(tmp_path / "shop")
    r.commit("chore: init", {"app.py": "PRICE = 10\n", "README": "shop\n"})
    return r


@pytest.fixture(params=["processes", "batch"])
def git(repo: GitRepoBuilder, tmp_path: Path, request: pytest.FixtureRequest) -> CliGitRepository:
    """Every test twice: lookups through one-off git processes (a repository not yet probed),
    and through the long-running ``cat-file --batch`` (after ``refresh`` probed it)."""
    g = CliGitRepository(str(repo.path), tmp_path / "mirrors" / "shop")
    if request.param == "batch":
        g.refresh()
    return g


# -- resolve -----------------------------------------------------------------------------------
def test_resolve_full_short_and_branch(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    sha = repo.head()
    assert git.resolve(sha) == sha
    assert git.resolve(sha[:7]) == sha
    assert git.resolve("main") == sha
    repo.tag("v1.0.0", message="annotated")
    assert git.resolve("v1.0.0") == sha  # peeled to the commit


def test_resolve_unknown_is_typed(git: CliGitRepository) -> None:
    with pytest.raises(NotFoundError) as err:
        git.resolve("deadbeef")
    assert err.value.code is ErrorCode.UNKNOWN_SHA
    assert "deadbeef" in err.value.message


@pytest.mark.parametrize("rev", ["-x", "--output=/tmp/pwned", "", "a b"])
def test_resolve_refuses_options(git: CliGitRepository, rev: str) -> None:
    with pytest.raises(InvalidError):
        git.resolve(rev)


def test_branch_tip_and_ancestry(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    first = repo.head()
    second = repo.commit("feat: more", {"more.py": "1\n"})
    assert git.branch_tip("main") == second
    assert git.branch_tip("nope") is None
    assert git.is_ancestor(first, second)
    assert not git.is_ancestor(second, first)


# -- log -----------------------------------------------------------------------------------------
def test_log_parses_merges_unicode_and_bodies(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    base = repo.head()
    with repo.on("topic", create_from="main"):
        feat = repo.commit(
            "feat: wishlist (#12)",
            {"wish.py": "W = 1\n"},
            author="Zoë Ångström <zoe@example.org>",
            body="Line one.\n\nBREAKING CHANGE: wish\u00e9s are gone\nCo-authored-by: X <x@y>",
        )
    merge = repo.merge_pr("topic", 45, body="Wishlist")
    fix = repo.commit("fix: rounding (#13)", {"app.py": "PRICE = 11\n"})

    commits = git.log(fix, since=base)
    assert [c.sha for c in commits] == [fix, merge, feat]
    by_sha = {c.sha: c for c in commits}
    assert by_sha[merge].parents == (base, feat)
    assert by_sha[merge].subject == "Merge pull request #45 from octo/topic"
    assert by_sha[merge].body == "Wishlist"
    f = by_sha[feat]
    assert (f.author_name, f.author_email) == ("Zoë Ångström", "zoe@example.org")
    assert f.subject == "feat: wishlist (#12)"
    assert f.body.startswith("Line one.\n\nBREAKING CHANGE: wishés are gone")
    assert f.authored_at.tzinfo is not None
    assert f.authored_at > datetime(2026, 1, 1, tzinfo=UTC)
    assert len(git.log(fix)) == 4  # without since: the whole history


def test_log_survives_control_characters(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    odd = repo.commit("fix: odd \x1f subject", {"o": "1"}, body="body \x1e with\n\nseparators")
    [c] = git.log(odd, since=f"{odd}~1")
    assert (c.sha, c.subject, c.body) == (
        odd,
        "fix: odd \x1f subject",
        "body \x1e with\n\nseparators",
    )
    assert git.log(odd, since=odd) == []


def test_changelog_reads_entries_straight_from_log(
    repo: GitRepoBuilder, git: CliGitRepository
) -> None:
    base = repo.head()
    with repo.on("topic", create_from="main"):
        repo.commit("feat(cart)!: wishlist (#12)", {"wish.py": "W = 1\n"}, body="Line one.")
    repo.merge_pr("topic", 45, body="See merge request shop/app!46")
    fix = repo.commit("fix: rounding (#13)", {"app.py": "PRICE = 11\n"}, body="BREAKING CHANGE: x")

    entries = git.changelog(fix, since=base)
    assert entries == build_changelog(git.log(fix, since=base))
    assert [(e.type, e.scope, e.pr, e.breaking, e.picked) for e in entries] == [
        ("fix", None, 13, True, False),
        (None, None, 45, False, False),
        ("feat", "cart", 12, True, False),
    ]
    assert git.changelog(fix, since=base, limit=2) == entries[:2]  # the newest
    assert git.changelog(fix, since=base, picked=True) == build_changelog(
        git.log(fix, since=base), picked=True
    )
    assert git.changelog(fix) == build_changelog(git.log(fix))
    assert git.changelog(fix, since=fix) == []


# -- missing changes ---------------------------------------------------------------------------------
def test_missing_changes_by_ancestry_and_patch_id(
    repo: GitRepoBuilder, git: CliGitRepository
) -> None:
    base = repo.head()
    a = repo.commit("fix: a", {"a.py": "a\n"})
    b = repo.commit("fix: b", {"b.py": "b\n"})
    with repo.on("release/1.0.0", create_from=base):
        repo.git("cherry-pick", "-x", a)  # same patch, different sha
    assert git.missing_changes("release/1.0.0", "main", base) == [b]


# -- branches ----------------------------------------------------------------------------------------
def test_create_branch_then_exists_conflicts(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    before = repo.snapshot()
    git.create_branch("release/1.0.0", repo.head())
    assert repo.branches()["release/1.0.0"] == repo.head()
    with pytest.raises(ConflictError) as err:
        git.create_branch("release/1.0.0", repo.head())
    assert "already exists" in err.value.message
    assert repo.snapshot()[1:] == before[1:]  # HEAD and the working copy as they were


def test_create_branch_unknown_sha(git: CliGitRepository) -> None:
    with pytest.raises(NotFoundError):
        git.create_branch("release/1.0.0", "0123456789abcdef0123456789abcdef01234567")


def test_delete_branch_is_compare_and_swap(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    first = repo.head()
    second = repo.commit("feat: x", {"x": "1"})
    git.create_branch("release/1.0.0", first)
    with pytest.raises(ConflictError):
        git.delete_branch("release/1.0.0", second)
    assert git.branch_tip("release/1.0.0") == first
    git.delete_branch("release/1.0.0", first)
    assert git.branch_tip("release/1.0.0") is None
    git.delete_branch("release/1.0.0", first)  # gone already: nothing to compensate


# -- picks ---------------------------------------------------------------------------------------------
def _release(repo: GitRepoBuilder, git: CliGitRepository) -> str:
    base = repo.head()
    git.create_branch("release/1.0.0", base)
    repo.commit("feat: cart (#20)", {"cart.py": "CART = []\n"})
    return base


def test_pick_keeps_author_adds_trailer_and_waits_for_apply(
    repo: GitRepoBuilder, git: CliGitRepository
) -> None:
    base = _release(repo, git)
    fix = repo.commit("fix: price (#21)", {"app.py": "PRICE = 9\n"}, author="Grace Hopper")
    before = repo.snapshot()

    plan = git.plan_pick("release/1.0.0", [fix], BOT)
    assert plan.old_tip == base
    assert [p.source_sha for p in plan.picked] == [fix]
    assert git.branch_tip("release/1.0.0") == base  # planned, not published
    assert repo.snapshot() == before

    git.apply_pick(plan)
    assert git.branch_tip("release/1.0.0") == plan.new_tip
    meta = repo.git("log", "-1", "--format=%an|%ae|%aI|%cn|%ce|%P", plan.new_tip).split("|")
    orig = repo.git("log", "-1", "--format=%an|%ae|%aI", fix).split("|")
    assert meta[:3] == orig
    assert meta[3:5] == ["Release Bot", "bot@example.com"]
    assert meta[5] == base
    assert repo.message(plan.new_tip) == f"fix: price (#21)\n\n(cherry picked from commit {fix})"
    assert git.read_file(plan.new_tip, "app.py") == b"PRICE = 9\n"
    assert git.read_file(plan.new_tip, "cart.py") is None  # the feature stayed on main
    assert repo.snapshot()[1:] == before[1:]


def test_pick_chains_several_commits(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    _release(repo, git)
    one = repo.commit("fix: one", {"one.py": "1\n"})
    two = repo.commit("fix: two", {"one.py": "2\n"})  # needs one
    plan = git.plan_pick("release/1.0.0", [one, two], BOT)
    assert repo.head(f"{plan.picked[1].new_sha}^") == plan.picked[0].new_sha
    assert plan.new_tip == plan.picked[1].new_sha
    git.apply_pick(plan)
    assert git.read_file("release/1.0.0", "one.py") == b"2\n"


def test_conflict_lists_paths_and_changes_nothing(
    repo: GitRepoBuilder, git: CliGitRepository
) -> None:
    base = _release(repo, git)
    repo.commit("refactor: price", {"app.py": "COST = 10\n"})
    clash = repo.commit("fix: price", {"app.py": "COST = 9\n"}, author="Grace Hopper")
    repo.write({"scratch.txt": "user's uncommitted work\n"})
    before = repo.snapshot()

    with pytest.raises(ConflictError) as err:
        git.plan_pick("release/1.0.0", [clash], BOT)
    assert err.value.code is ErrorCode.PICK_CONFLICT
    assert err.value.details == {"files": ["app.py"], "sha": clash}
    assert "app.py" in err.value.message
    assert git.branch_tip("release/1.0.0") == base
    assert repo.snapshot() == before
    assert "scratch.txt" in before[2]


def test_already_picked_by_ancestry(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    base = _release(repo, git)
    with pytest.raises(ConflictError) as err:
        git.plan_pick("release/1.0.0", [base], BOT)
    assert err.value.code is ErrorCode.ALREADY_PICKED


def test_already_picked_by_patch_id(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    _release(repo, git)
    fix = repo.commit("fix: price", {"app.py": "PRICE = 9\n"})
    git.apply_pick(git.plan_pick("release/1.0.0", [fix], BOT))
    with pytest.raises(ConflictError) as err:
        git.plan_pick("release/1.0.0", [fix], BOT)
    assert err.value.code is ErrorCode.ALREADY_PICKED
    assert err.value.details["shas"] == [fix]


def test_empty_pick_is_already_picked(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    base = _release(repo, git)
    with repo.on("hotfix", create_from=base):
        repo.commit("fix: limit (on hotfix)", {"limits.py": "MAX = 10\n"})
    git.apply_pick(git.plan_pick("release/1.0.0", ["hotfix"], BOT))
    same = repo.commit("fix: limit, again on main\n\nreworded", {"limits.py": "MAX = 10\n"})
    repo.commit("docs: note", {"README": "shop!\n"})
    # different patch context? no: identical change -> same patch-id or empty tree, both refused
    with pytest.raises(ConflictError) as err:
        git.plan_pick("release/1.0.0", [same], BOT)
    assert err.value.code is ErrorCode.ALREADY_PICKED


def test_pick_names_commits_any_way_resolve_does(
    repo: GitRepoBuilder, git: CliGitRepository
) -> None:
    base = _release(repo, git)
    fix = repo.commit("fix: price", {"app.py": "PRICE = 9\n"})
    repo.tag("v-fix", message="annotated")
    for rev in (fix[:9], "v-fix", "main", "HEAD~0"):
        plan = git.plan_pick("release/1.0.0", [rev], BOT)
        assert (plan.old_tip, [p.source_sha for p in plan.picked]) == (base, [fix])
    with pytest.raises(NotFoundError) as err:  # a range is no commit
        git.plan_pick("release/1.0.0", [f"{base}..{fix}"], BOT)
    assert err.value.code is ErrorCode.UNKNOWN_SHA
    for rev in (f"{fix}^{{tree}}", f"{fix}:app.py", "nope"):
        with pytest.raises(NotFoundError) as err:
            git.plan_pick("release/1.0.0", [rev], BOT)
        assert err.value.code is ErrorCode.UNKNOWN_SHA
        assert err.value.details == {"rev": rev}
    with pytest.raises(NotFoundError) as missing:  # the branch is checked first
        git.plan_pick("release/9.9.9", ["nope"], BOT)
    assert missing.value.details == {"branch": "release/9.9.9"}


def test_pick_the_same_commit_twice_or_the_tip(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    base = _release(repo, git)
    fix = repo.commit("fix: price", {"app.py": "PRICE = 9\n"})
    with pytest.raises(ConflictError) as twice:  # the second one changes nothing
        git.plan_pick("release/1.0.0", [fix, fix[:10]], BOT)
    assert twice.value.code is ErrorCode.ALREADY_PICKED
    with pytest.raises(ConflictError) as tip:
        git.plan_pick("release/1.0.0", [fix, base], BOT)
    assert (tip.value.code, tip.value.details["shas"]) == (ErrorCode.ALREADY_PICKED, [base])


def test_already_picked_by_patch_id_of_a_commit_below_the_cut(
    repo: GitRepoBuilder, git: CliGitRepository
) -> None:
    """A fix from a side branch forked before the cut, whose change mainline took as another
    commit before the cut: the release branch has no commit of its own, and still has it."""
    fork = repo.head()
    with repo.on("hotfix", create_from=fork):
        side = repo.commit("fix: limit", {"limits.py": "MAX = 10\n"})
    repo.commit("fix: limit (squashed)", {"limits.py": "MAX = 10\n"})
    repo.commit("feat: more", {"more.py": "1\n"})
    git.create_branch("release/1.0.0", repo.head())
    for picks in ([side], ["hotfix"], [side, repo.commit("fix: b", {"b.py": "b\n"})]):
        with pytest.raises(ConflictError) as err:
            git.plan_pick("release/1.0.0", picks, BOT)
        assert (err.value.code, err.value.details["shas"]) == (ErrorCode.ALREADY_PICKED, [side])


def test_merge_commit_pick_is_refused(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    _release(repo, git)
    with repo.on("topic", create_from="main"):
        repo.commit("fix: t", {"t.py": "t\n"})
    merge = repo.merge_pr("topic", 7)
    with pytest.raises(InvalidError) as err:
        git.plan_pick("release/1.0.0", [merge], BOT)
    assert "merge commit" in err.value.message


def test_apply_and_revert_are_compare_and_swap(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    base = _release(repo, git)
    fix = repo.commit("fix: price", {"app.py": "PRICE = 9\n"})
    other = repo.commit("fix: other", {"other.py": "1\n"})
    plan = git.plan_pick("release/1.0.0", [fix], BOT)
    rival = git.plan_pick("release/1.0.0", [other], BOT)
    git.apply_pick(rival)
    with pytest.raises(ConflictError):
        git.apply_pick(plan)  # the branch moved since planning
    assert git.branch_tip("release/1.0.0") == rival.new_tip
    git.revert_pick(rival)
    assert git.branch_tip("release/1.0.0") == base


def test_pick_onto_unknown_branch(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    with pytest.raises(NotFoundError):
        git.plan_pick("release/9.9.9", [repo.head()], BOT)


def test_a_git_process_past_its_timeout_is_killed(
    repo: GitRepoBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = CliGitRepository(str(repo.path), tmp_path / "mirrors" / "slow", timeout_s=0.2)
    assert slow.resolve("main") == repo.head()
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "git").write_text("#!/bin/sh\nexec sleep 30\n")
    (shim / "git").chmod(0o755)
    with monkeypatch.context() as m:
        m.setenv("PATH", f"{shim}:{os.environ['PATH']}")
        for _ in range(2):
            with pytest.raises(AdapterError, match=r"timed out after 0\.2s"):
                slow.resolve("main")
    assert slow.resolve("main") == repo.head()  # the watchdog lets a quick call be

    slow.refresh()  # probed: lookups go through cat-file --batch, started with the shim
    with monkeypatch.context() as m:
        m.setenv("PATH", f"{shim}:{os.environ['PATH']}")
        with pytest.raises(AdapterError, match=r"cat-file timed out after 0\.2s"):
            slow.branch_tip("main")


def test_batch_lookups_see_what_changed_since_it_started(
    repo: GitRepoBuilder, tmp_path: Path
) -> None:
    git = CliGitRepository(str(repo.path), tmp_path / "mirrors" / "shop")
    git.refresh()
    first = repo.head()
    assert git.branch_tip("main") == first  # starts the batch process
    assert git._batch is not None and git._batch._held
    second = repo.commit("feat: more", {"dir/a b.txt": "spaced\n", "more.py": "1\n"})
    assert git.branch_tip("main") == second
    assert git.resolve(second[:8]) == second
    assert git.read_file(second, "dir/a b.txt") == b"spaced\n"
    assert git.read_file(second, "dir") is None  # a tree is no file
    assert git.read_file(first, "more.py") is None
    repo.git("branch", "topic", first)
    assert git.branch_tip("topic") == first
    repo.git("pack-refs", "--all")
    repo.git("update-ref", "refs/heads/topic", second)
    assert git.branch_tip("topic") == second
    repo.git("branch", "-D", "topic")
    assert git.branch_tip("topic") is None
    repo.tag("v2", message="annotated")
    assert git.resolve("v2") == second
    with pytest.raises(NotFoundError) as err:
        git.resolve("v3")
    assert err.value.code is ErrorCode.UNKNOWN_SHA

    git._batch._held[0].kill()  # a batch process that died is replaced
    assert git.branch_tip("main") == second
    assert git.read_file(second, "more.py") == b"1\n"


def test_lookups_without_a_repository_fall_back_to_processes(tmp_path: Path) -> None:
    nowhere = CliGitRepository(str(tmp_path / "nope"), tmp_path / "mirrors" / "nope")
    assert nowhere.branch_tip("main") is None
    assert nowhere.read_file("HEAD", "x") is None
    with pytest.raises(NotFoundError):
        nowhere.refresh()


# -- files and worktrees -----------------------------------------------------------------------
def test_read_file(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    assert git.read_file(repo.head(), "app.py") == b"PRICE = 10\n"
    assert git.read_file(repo.head(), "missing.txt") is None
    with pytest.raises(InvalidError):
        git.read_file("-p", "app.py")


def _worktrees(repo: GitRepoBuilder) -> int:
    return repo.git("worktree", "list", "--porcelain").count("worktree ")


def test_checkout_is_clean_and_removed(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    old = repo.head()
    repo.commit("feat: new", {"new.py": "1\n"})
    repo.write({"app.py": "PRICE = 'dirty'\n"})
    before = repo.snapshot()
    with git.checkout(old) as where:
        assert (where / "app.py").read_text() == "PRICE = 10\n"
        assert not (where / "new.py").exists()
        assert _worktrees(repo) == 2
    assert not where.exists()
    assert _worktrees(repo) == 1
    assert repo.snapshot() == before


def test_checkout_cleans_up_after_an_exception(repo: GitRepoBuilder, git: CliGitRepository) -> None:
    with pytest.raises(RuntimeError), git.checkout(repo.head()) as where:
        (where / "build-output").write_text("x")
        raise RuntimeError("build blew up")
    assert not where.exists()
    assert _worktrees(repo) == 1


# -- remote mirrors --------------------------------------------------------------------------------
def test_url_is_mirrored_and_refreshed(repo: GitRepoBuilder, tmp_path: Path) -> None:
    mirror = tmp_path / "mirrors" / "shop.git"
    remote = CliGitRepository(f"file://{repo.path}", mirror)
    remote.refresh()
    assert remote.resolve("main") == repo.head()
    new = repo.commit("feat: later", {"later.py": "1\n"})
    with pytest.raises(NotFoundError):
        remote.resolve(new)
    remote.refresh()
    assert remote.resolve("main") == new
    assert (mirror / "HEAD").exists()


def _bare(repo: GitRepoBuilder, tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(origin))
    return origin


def _remote_tip(origin: Path, branch: str) -> str:
    ref = f"refs/heads/{branch}"
    cmd = ["git", "-C", str(origin), "rev-parse", "--verify", "-q", ref]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()


def test_local_release_branches_survive_refresh(repo: GitRepoBuilder, tmp_path: Path) -> None:
    origin = _bare(repo, tmp_path)
    remote = CliGitRepository(f"file://{origin}", tmp_path / "m.git")
    remote.refresh()
    remote.create_branch("release/1.0.0", "main")
    remote.refresh()
    assert remote.branch_tip("release/1.0.0") == repo.head()
    assert _remote_tip(origin, "release/1.0.0") == ""  # push=False: nothing sent


def test_push_mirrors_branch_moves_with_a_lease(repo: GitRepoBuilder, tmp_path: Path) -> None:
    origin = _bare(repo, tmp_path)
    fix = repo.commit("fix: price", {"app.py": "PRICE = 9\n"})
    repo.git("push", "-q", str(origin), "main")
    remote = CliGitRepository(f"file://{origin}", tmp_path / "m.git", push=True)
    remote.refresh()
    base = remote.resolve("main~1")
    remote.create_branch("release/1.0.0", base)
    assert _remote_tip(origin, "release/1.0.0") == base
    plan = remote.plan_pick("release/1.0.0", [fix], BOT)
    remote.apply_pick(plan)
    assert _remote_tip(origin, "release/1.0.0") == plan.new_tip
    remote.revert_pick(plan)
    assert _remote_tip(origin, "release/1.0.0") == base

    # someone moves the branch on the remote: our next move is refused and undone locally
    repo.git("push", "-q", "-f", str(origin), f"{fix}:refs/heads/release/1.0.0")
    again = remote.plan_pick("release/1.0.0", [fix], BOT)
    with pytest.raises(ConflictError) as err:
        remote.apply_pick(again)
    assert "remote refused" in err.value.message
    assert remote.branch_tip("release/1.0.0") == base
    assert _remote_tip(origin, "release/1.0.0") == fix

    remote.create_branch("release/2.0.0", base)
    remote.delete_branch("release/2.0.0", base)
    assert _remote_tip(origin, "release/2.0.0") == ""
