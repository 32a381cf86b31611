"""What every git repository adapter promises (ports.git.GitRepository), checked on each one.

There is one adapter today, ``CliGitRepository`` (the git program), and no memory twin: the
use-case tests run real git. It has two modes, both checked here: a project given as a local
path (used in place) and one given as a URL (mirrored into a directory of the server's; here a
``file://`` URL). The contract is written for the next adapter (pygit2, a hosted API) to pass:
add it to ``KINDS``.

The contract: revisions resolve to full SHAs or NotFoundError(UNKNOWN_SHA); history reads newest
first; branches are created once and deleted only from the expected tip; a pick writes commits
without moving the branch until ``apply_pick`` (a compare-and-swap), refuses conflicts and
commits already there; ``checkout`` is a clean temporary tree; the user's working copy is never
touched; ``refresh`` makes commits made upstream visible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.adapters.git.cli import CliGitRepository
from shipyard.errors import ConflictError, ErrorCode, NotFoundError
from shipyard.ports.git import GitRepository, Identity
from tests.support.gitrepo import GitRepoBuilder

BOT = Identity("Release Bot", "bot@example.com")
MAKERS: dict[str, Callable[[GitRepoBuilder, Path], GitRepository]] = {
    "cli-path": lambda upstream, root: CliGitRepository(str(upstream.path), root / "mirror"),
    "cli-url": lambda upstream, root: CliGitRepository(
        upstream.path.as_uri(), root / "mirror" / "shop.git"
    ),
}
KINDS = list(MAKERS)


@dataclass
class Harness:
    kind: str
    git: GitRepository
    upstream: GitRepoBuilder  # the user's repository (for a URL, the remote)
    first: str  # "chore: init"
    second: str  # "feat: cart (#12)" by Grace Hopper

    def reopen(self) -> None:
        """What a server does before reading: fetch (a no-op for a local path)."""
        self.git.refresh()


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    upstream = GitRepoBuilder(tmp_path / "shop")
    first = upstream.commit("chore: init", {"app.py": "PRICE = 10\n", "README": "shop\n"})
    second = upstream.commit(
        "feat: cart (#12)", {"cart.py": "ITEMS = []\n"}, author="Grace Hopper <grace@navy.mil>"
    )
    upstream.tag("v1.0.0")
    h = Harness(request.param, MAKERS[request.param](upstream, tmp_path), upstream, first, second)
    h.reopen()
    return h


def test_revisions_resolve_to_full_shas(harness: Harness) -> None:
    git, second = harness.git, harness.second

    for rev in (second, second[:10], "main", "v1.0.0", "HEAD", "main~0"):
        assert git.resolve(rev) == second, rev
    assert git.resolve("main~1") == harness.first


@pytest.mark.parametrize("rev", ["0" * 40, "no-such-branch", "v9.9.9", "main~5"])
def test_an_unknown_revision_is_not_found_unknown_sha(harness: Harness, rev: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        harness.git.resolve(rev)
    assert caught.value.code is ErrorCode.UNKNOWN_SHA


def test_branch_tips_and_ancestry(harness: Harness) -> None:
    git = harness.git

    assert git.branch_tip("main") == harness.second
    assert git.branch_tip("no-such-branch") is None
    assert git.is_ancestor(harness.first, harness.second)
    assert not git.is_ancestor(harness.second, harness.first)
    assert git.is_ancestor(harness.second, harness.second)


def test_log_is_newest_first_and_excludes_since(harness: Harness) -> None:
    third = harness.upstream.commit("fix: rounding", {"app.py": "PRICE = 11\n"})
    harness.reopen()
    git = harness.git

    assert [c.sha for c in git.log(third)] == [third, harness.second, harness.first]
    assert [c.sha for c in git.log(third, since=harness.first)] == [third, harness.second]
    assert git.log(third, since=third) == []
    newest = git.log(third)[1]
    assert (newest.subject, newest.author_name, newest.author_email) == (
        "feat: cart (#12)",
        "Grace Hopper",
        "grace@navy.mil",
    )


def test_changelog_and_authors_read_the_same_commits(harness: Harness) -> None:
    git = harness.git

    entries = git.changelog(harness.second)
    assert len(entries) == 2
    assert len(git.changelog(harness.second, limit=1)) == 1
    assert git.changelog(harness.second, since=harness.second) == []
    assert git.authors(harness.second, since=harness.first) == {("Grace Hopper", "grace@navy.mil")}


def test_a_branch_is_created_once_and_deleted_only_from_its_expected_tip(
    harness: Harness,
) -> None:
    git = harness.git
    git.create_branch("release/1.0", harness.first)
    assert git.branch_tip("release/1.0") == harness.first

    with pytest.raises(ConflictError):
        git.create_branch("release/1.0", harness.second)
    with pytest.raises(ConflictError):
        git.delete_branch("release/1.0", harness.second)  # someone moved it: not ours to delete
    assert git.branch_tip("release/1.0") == harness.first

    git.delete_branch("release/1.0", harness.first)
    assert git.branch_tip("release/1.0") is None
    git.delete_branch("release/1.0", harness.first)  # gone already: nothing to do


def test_a_branch_at_an_unknown_sha_is_not_found(harness: Harness) -> None:
    with pytest.raises(NotFoundError):
        harness.git.create_branch("release/9.9", "f" * 40)
    assert harness.git.branch_tip("release/9.9") is None


def _fix_on_main(h: Harness) -> str:
    fix = h.upstream.commit("fix: cart total (#13)", {"cart.py": "ITEMS = []\nTOTAL = 0\n"})
    h.reopen()
    return fix


def test_a_pick_moves_the_branch_only_when_applied(harness: Harness) -> None:
    git = harness.git
    git.create_branch("release/1.0", harness.second)
    fix = _fix_on_main(harness)

    plan = git.plan_pick("release/1.0", [fix], BOT)

    assert git.branch_tip("release/1.0") == harness.second  # written, not published
    assert (plan.branch, plan.old_tip) == ("release/1.0", harness.second)
    assert [p.source_sha for p in plan.picked] == [fix] and plan.new_tip == plan.picked[-1].new_sha
    git.apply_pick(plan)
    assert git.branch_tip("release/1.0") == plan.new_tip
    assert git.read_file(plan.new_tip, "cart.py") == b"ITEMS = []\nTOTAL = 0\n"
    picked = git.log(plan.new_tip, since=harness.second)
    assert [(c.subject, c.author_name) for c in picked] == [
        ("fix: cart total (#13)", "Ada Lovelace")
    ]

    git.revert_pick(plan)
    assert git.branch_tip("release/1.0") == harness.second


def test_applying_a_pick_after_the_branch_moved_is_a_conflict(harness: Harness) -> None:
    git = harness.git
    git.create_branch("release/1.0", harness.first)
    docs = harness.upstream.commit("docs: readme", {"README": "shop, v2\n"})
    harness.reopen()
    plan = git.plan_pick("release/1.0", [docs], BOT)
    other = git.plan_pick("release/1.0", [harness.second], BOT)
    git.apply_pick(other)  # someone else picked first

    with pytest.raises(ConflictError):
        git.apply_pick(plan)

    assert git.branch_tip("release/1.0") == other.new_tip


def test_a_commit_already_on_the_branch_is_refused(harness: Harness) -> None:
    git = harness.git
    git.create_branch("release/1.0", harness.second)

    with pytest.raises(ConflictError) as caught:
        git.plan_pick("release/1.0", [harness.second], BOT)

    assert caught.value.code is ErrorCode.ALREADY_PICKED
    assert git.branch_tip("release/1.0") == harness.second


def test_a_conflicting_pick_is_refused_naming_the_files(harness: Harness) -> None:
    _, theirs = harness.upstream.conflicting("price.py", "P = 1\n", "P = 2\n", "P = 3\n")
    harness.reopen()
    git = harness.git
    git.create_branch("release/1.0", git.resolve("main"))
    tip = git.branch_tip("release/1.0")

    with pytest.raises(ConflictError) as caught:
        git.plan_pick("release/1.0", [theirs], BOT)

    assert caught.value.code is ErrorCode.PICK_CONFLICT
    assert caught.value.details["files"] == ["price.py"]
    assert git.branch_tip("release/1.0") == tip


def test_read_file_at_a_commit(harness: Harness) -> None:
    git = harness.git

    assert git.read_file(harness.first, "app.py") == b"PRICE = 10\n"
    assert git.read_file(harness.first, "cart.py") is None  # not there yet
    assert git.read_file(harness.second, "no/such/file") is None


def test_checkout_is_a_clean_temporary_tree_of_the_commit(harness: Harness) -> None:
    git = harness.git

    with git.checkout(harness.first) as tree:
        assert (tree / "app.py").read_text() == "PRICE = 10\n"
        assert not (tree / "cart.py").exists()
        (tree / "build-output").write_text("made by a build")
        kept = tree
    assert not kept.exists()


def test_the_users_working_copy_is_never_touched(harness: Harness) -> None:
    git = harness.git
    fix = _fix_on_main(harness)
    harness.upstream.write({"wip.py": "half done\n"})  # uncommitted work in the user's copy
    before = harness.upstream.snapshot()

    git.create_branch("release/1.0", harness.second)
    plan = git.plan_pick("release/1.0", [fix], BOT)
    with git.checkout(harness.first):
        pass
    git.log(fix)
    git.revert_pick(plan)
    git.delete_branch("release/1.0", harness.second)

    refs, head, status = harness.upstream.snapshot()
    assert (head, status) == before[1:]
    assert (harness.upstream.path / "wip.py").read_text() == "half done\n"
    assert harness.upstream.git("symbolic-ref", "--short", "HEAD") == "main"
    assert refs == before[0]


def test_refresh_makes_upstream_commits_visible(harness: Harness) -> None:
    later = harness.upstream.commit("feat: checkout (#14)", {"checkout.py": "OK = True\n"})

    harness.git.refresh()

    assert harness.git.resolve("main") == later
    assert harness.git.branch_tip("main") == later
