"""Real git repositories for tests, built commit by commit in a temp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path


class GitRepo:
    def __init__(self, path: Path, *, branch: str = "main") -> None:
        self.path = path
        subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True)
        self.git("config", "user.name", "Ada Lovelace")
        self.git("config", "user.email", "ada@example.com")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        import os

        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            check=True,
            capture_output=True,
            text=True,
            env=(os.environ | env) if env else None,
        )
        return done.stdout.strip()

    def commit(self, subject: str, files: dict[str, str], *, author: str | None = None) -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        self.git("add", "-A")
        env = None
        if author:
            env = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author.lower()}@example.com"}
        self.git("commit", "-q", "-m", subject, env=env)
        return self.head()

    def head(self, rev: str = "HEAD") -> str:
        return self.git("rev-parse", rev)

    def checkout(self, *args: str) -> None:
        self.git("checkout", "-q", *args)

    def snapshot(self) -> tuple[str, str, str]:
        """Branches, HEAD and working-copy status: what a refused operation must leave alone."""
        return (
            self.git("for-each-ref", "--format=%(refname) %(objectname)"),
            self.git("rev-parse", "HEAD"),
            self.git("status", "--porcelain"),
        )
