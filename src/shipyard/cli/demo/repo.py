"""The demo's sample git repository, made with plain git commands, and the commits of its story.

Commits are authored by Ada (the demo's deployer), so separation of duties bars her from
approving what she wrote; Grace, the approver, wrote nothing. Dates are fixed per commit so the
repository reads the same on every run, and the build is byte-for-byte
reproducible (sorted names, zero mtimes and owners, ``gzip -n``): the same commit always yields
the same artifact digest, however and whenever its checkout was made.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from shipyard.cli.errors import CliError

PROJECT = "hello"
AUTHOR = ("Ada Lovelace", "ada@example.com")
APP = (Path(__file__).parent / "sample_app.py").read_text()
HEALTHY = "FAILURE_SHARE = 0.0\n"
BUGGY = "FAILURE_SHARE = 0.3  # new greeting code path: crashes for 30% of the requests\n"
PLAIN, WELCOMING = 'GREETING = "hello"\n', 'GREETING = "welcome"\n'
_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z
README = (
    "# hello\n\nRun it with `PORT=8000 python3 app.py`; `GET /` greets, `GET /healthz` is ok.\n"
)
assert HEALTHY in APP, "sample_app.py must set FAILURE_SHARE = 0.0: the bug commit edits it"
assert PLAIN in APP, 'sample_app.py must set GREETING = "hello": the feature commit edits it'

CONFIG = """\
# The `shipyard demo` project: staging takes every build, production needs an approval and
# moves its traffic through HAProxy with a short canary (seconds, not minutes: it is a demo).
# The build is reproducible: the same commit always gives the same bytes.
project: {project}
mainline: main
versioning: {{scheme: semver, initial: 1.0.0}}
build:
  command: >-
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u=rw,go=r
    -cf "$SHIPYARD_ARTIFACTS_DIR/hello.tar" app.py && gzip -n "$SHIPYARD_ARTIFACTS_DIR/hello.tar"
  artifacts: ["*.tar.gz"]
environments:
  - name: staging
    target: {{kind: local, start: "{start}", health: /healthz, health_timeout: 20}}
    auto_promote: true
  - name: production
    target: {{kind: local, start: "{start}", instances: 2, health: /healthz, health_timeout: 20}}
    requires: [staging]
    approval: {{required: 1, approvers: ["role:approver"]}}
    router: {{port: {port}, drain: 0.2s}}
    policy: canary
policies:
  canary:
    steps:
      - set_weight: 20
      - analysis: {{checks: [errors], interval: 2s, duration: 10s}}
      - set_weight: 50
      - analysis: {{checks: [errors], interval: 2s, duration: 10s}}
checks:
  # the default judge, sequential: canary against stable, anytime-valid at alpha 0.02. A
  # 10-second window at 20% (~300 canary requests, none failing) bounds the canary's error
  # ratio at +1.5 points, so here up to 2.5 points above stable are negligible (default 0.1)
  errors: {{metric: error_ratio, negligible_increase: 0.025}}
"""


def app_python() -> str:
    """An interpreter the deployed app's user can run: as root the app runs as an unprivileged
    user, and a virtualenv under /root (0700) is out of its reach; the app needs only the
    standard library."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        real = Path(candidate).resolve()
        if real.exists() and all(p.stat().st_mode & 0o001 for p in (real, *real.parents)):
            return candidate
    return sys.executable


class SampleRepo:
    """The repository at ``path``; each method makes one commit and returns its SHA."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tick = 0

    def git(self, *args: str) -> str:
        self._tick += 1
        stamp = f"@{_EPOCH + 3600 * self._tick} +0000"
        env = os.environ | {
            "GIT_AUTHOR_NAME": AUTHOR[0],
            "GIT_AUTHOR_EMAIL": AUTHOR[1],
            "GIT_COMMITTER_NAME": AUTHOR[0],
            "GIT_COMMITTER_EMAIL": AUTHOR[1],
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,  # the user's git config never leaks in
        }
        done = subprocess.run(
            ["git", "-C", str(self.path), *args], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise CliError(f"git {args[0]} failed: {done.stderr.strip()}", "adapter_failed")
        return done.stdout.strip()

    def commit(self, message: str, files: dict[str, str]) -> str:
        for name, text in files.items():
            (self.path / name).write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--no-gpg-sign", "-m", message)
        return self.git("rev-parse", "HEAD")

    def create(self, router_port: int) -> list[str]:
        """A fresh repository with a short history: the service, then its health check."""
        self.path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        start = f"{shlex.quote(app_python())} app.py"
        config = CONFIG.format(project=PROJECT, start=start, port=router_port)
        return [
            self.commit("feat: hello service (#1)", {"app.py": APP, "shipyard.yaml": config}),
            self.commit("docs: how to run it (#2)", {"README.md": README}),
        ]

    def commit_feature(self) -> str:
        """A harmless change on main: what 1.1.0 ships, through a healthy canary."""
        app = (self.path / "app.py").read_text()
        return self.commit(
            "feat: a warmer greeting (#3)", {"app.py": app.replace(PLAIN, WELCOMING)}
        )

    def commit_bug(self) -> str:
        app = (self.path / "app.py").read_text()
        return self.commit("feat: personal greetings (#4)", {"app.py": app.replace(HEALTHY, BUGGY)})

    def commit_fix(self) -> str:
        app = (self.path / "app.py").read_text()
        return self.commit(
            "fix: greeting crash for 30% of users (#5)", {"app.py": app.replace(BUGGY, HEALTHY)}
        )
