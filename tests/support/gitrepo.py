"""Real git repositories for tests, built commit by commit in a temp dir.

    repo = GitRepoBuilder(tmp_path / "shop")
    a = repo.commit("feat: cart (#12)", files={"cart.py": "A = 1\n"}, author="Grace Hopper")
    repo.branch("topic")                     # create (and stay on main)
    with repo.on("topic"):                   # commits land on topic, then back to main
        b = repo.commit("fix: typo", files={"cart.py": "A = 2\n"})
    m = repo.merge_pr("topic", number=45)    # "Merge pull request #45 from octo/topic"
    repo.tag("v1.0.0")

Every commit gets a distinct, increasing date so logs are deterministic. Identities and dates
come from the environment of each call, so the user's git config never leaks in.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

_BASE_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z


def _identity(author: str | None) -> tuple[str, str]:
    """'Name <mail>' or just 'Name' (mail derived), default Ada Lovelace."""
    if not author:
        return "Ada Lovelace", "ada@example.com"
    if "<" in author and author.endswith(">"):
        name, _, mail = author.partition("<")
        return name.strip(), mail[:-1].strip()
    return author, author.split()[0].lower() + "@example.com"


class GitRepoBuilder:
    """A throwaway repository with a tiny, pleasant API; every method returns plain SHAs/strings."""

    def __init__(self, path: Path, *, branch: str = "main") -> None:
        self.path = path
        self.main = branch
        self._tick = 0
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True)
        self.git("config", "user.name", "Ada Lovelace")
        self.git("config", "user.email", "ada@example.com")
        self.git("config", "commit.gpgsign", "false")

    # -- raw git --------------------------------------------------------------------------------
    def git(self, *args: str, env: Mapping[str, str] | None = None, check: bool = True) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            check=check,
            capture_output=True,
            text=True,
            env=(os.environ | dict(env)) if env else None,
        )
        return done.stdout.strip()

    def _when(self, author: str | None) -> dict[str, str]:
        self._tick += 1
        date = f"{_BASE_EPOCH + self._tick * 60} +0000"
        name, mail = _identity(author)
        return {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": mail,
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
        }

    # -- building history -----------------------------------------------------------------------
    def write(self, files: Mapping[str, str | bytes | None]) -> None:
        """Write files into the working copy; ``None`` deletes one."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)

    def commit(
        self,
        subject: str,
        files: Mapping[str, str | bytes | None] | None = None,
        *,
        author: str | None = None,
        body: str | None = None,
    ) -> str:
        """Commit ``files`` on the current branch; an empty ``files`` makes an empty commit."""
        self.write(files or {})
        self.git("add", "-A")
        message = subject if body is None else f"{subject}\n\n{body}"
        self.git("commit", "-q", "--allow-empty", "-m", message, env=self._when(author))
        return self.head()

    def branch(self, name: str, at: str = "HEAD") -> str:
        self.git("branch", name, at)
        return self.head(name)

    def checkout(self, *args: str) -> None:
        self.git("checkout", "-q", *args)

    @contextmanager
    def on(self, branch: str, *, create_from: str | None = None) -> Iterator[None]:
        """Commit on ``branch`` inside the block, then return to where HEAD was."""
        before = self.git("symbolic-ref", "--short", "-q", "HEAD", check=False) or self.head()
        if create_from is not None:
            self.git("branch", branch, create_from)
        self.checkout(branch)
        try:
            yield
        finally:
            self.checkout(before)

    def merge(self, branch: str, subject: str | None = None, *, author: str | None = None) -> str:
        """A true merge commit (--no-ff) of ``branch`` into the current branch."""
        message = subject or f"Merge branch '{branch}'"
        self.git("merge", "-q", "--no-ff", "-m", message, branch, env=self._when(author))
        return self.head()

    def merge_pr(self, branch: str, number: int, *, owner: str = "octo", body: str = "") -> str:
        """A GitHub-style merge: 'Merge pull request #N from owner/branch'."""
        subject = f"Merge pull request #{number} from {owner}/{branch}"
        return self.merge(branch, f"{subject}\n\n{body}" if body else subject)

    def tag(self, name: str, at: str = "HEAD", *, message: str | None = None) -> str:
        if message is None:
            self.git("tag", name, at)
        else:
            self.git("tag", "-a", name, "-m", message, at, env=self._when(None))
        return self.head(name)

    def conflicting(self, path: str, base: str, ours: str, theirs: str) -> tuple[str, str]:
        """Two commits that both edit ``path`` from ``base``: returns (on main, on branch 'clash').

        Picking the 'clash' commit onto a branch holding the main one conflicts in ``path``."""
        self.commit(f"chore: add {path}", {path: base})
        fork = self.head()
        ours_sha = self.commit(f"fix: {path} ours", {path: ours})
        with self.on("clash", create_from=fork):
            theirs_sha = self.commit(f"fix: {path} theirs", {path: theirs})
        return ours_sha, theirs_sha

    # -- reading --------------------------------------------------------------------------------
    def head(self, rev: str = "HEAD") -> str:
        return self.git("rev-parse", f"{rev}^{{commit}}")

    def branches(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        return dict(line.split(" ", 1) for line in out.splitlines())

    def message(self, rev: str) -> str:
        return self.git("log", "-1", "--format=%B", rev)

    def snapshot(self) -> tuple[str, str, str]:
        """Refs, HEAD and working-copy status: what a refused operation must leave alone."""
        return (
            self.git("for-each-ref", "--format=%(refname) %(objectname)"),
            self.git("rev-parse", "HEAD"),
            self.git("status", "--porcelain"),
        )


GitRepo = GitRepoBuilder  # the first name the service tests used
