"""Benchmark: what a cut + changelog + pick costs through Shipyard's git adapter vs raw git.

    .venv/bin/python bench/cut.py [--commits 50000] [--reps 7] [--cache DIR]

A repository with ``--commits`` linear mainline commits over 2,000 files is generated once with
``git fast-import`` and cached (default: $TMPDIR/shipyard-bench/cut-<commits>). It holds:

* ``v1.0.0`` and ``release/1.0.0``: the previous release, 2,000 commits back, whose branch carries
  one hotfix that mainline also got later (same patch, different commit);
* ``main``: the candidate is cut from ``main~50`` and the last commit (``main``) is a fix to pick.

Each repetition does, on a fresh branch name, what cutting a release and picking a fix needs:
resolve the cut point, check it is on the mainline, create ``release/<v>``, read the changelog
since the previous release, check the previous release's fixes all reached the mainline, then
pick the fix onto the new branch and publish it. ``shipyard_cut_pick`` is the one function to swap
for the full service call later; ``raw_cut_pick`` is the minimal sequence of plain git commands a
person would type (the cherry-pick needs a worktree there). Both run in the same process, over the
same repository, interleaved, and the median per step and in total is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shipyard.adapters.git.cli import CliGitRepository
from shipyard.ports.git import Identity

FILES = 2_000
RELEASE_BACK = 2_000
CUT_BACK = 50
BOT = Identity("Release Bot", "bot@example.com")
AUTHORS = [
    ("Ada Lovelace", "ada@example.com"),
    ("Grace Hopper", "grace@example.com"),
    ("Zoë Ångström", "zoe@example.org"),
    ("Linus T", "linus@example.com"),
    ("Margaret Hamilton", "margaret@example.com"),
]
KINDS = ["feat", "fix", "chore", "refactor", "docs", "perf"]
GIT = ["git", "-c", "core.hooksPath=/dev/null", "-c", "gc.auto=0"]
ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": os.environ.get("HOME", "/tmp"),
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Release Bot",
    "GIT_AUTHOR_EMAIL": "bot@example.com",
    "GIT_COMMITTER_NAME": "Release Bot",
    "GIT_COMMITTER_EMAIL": "bot@example.com",
}


# -- repository generation ---------------------------------------------------------------------
def _blob(text: str) -> bytes:
    data = text.encode()
    return b"data %d\n%s\n" % (len(data), data)


def _commit(mark: int, ref: str, when: int, subject: str, parent: int | None) -> bytes:
    name, mail = AUTHORS[mark % len(AUTHORS)]
    head = f"commit {ref}\nmark :{mark}\nauthor {name} <{mail}> {when} +0000\n"
    head += f"committer {name} <{mail}> {when} +0000\n"
    out = head.encode() + _blob(subject)
    if parent is not None:
        out += b"from :%d\n" % parent
    return out


def _path(i: int) -> str:
    return f"src/pkg{i % 40:02d}/mod{i:04d}.py"


def _stream(commits: int) -> Iterator[bytes]:
    """Linear main; tag + release branch RELEASE_BACK commits back; a hotfix on both."""
    t0 = 1_700_000_000
    release_at = commits - RELEASE_BACK
    hotfix_on_main_at = commits - RELEASE_BACK // 2
    yield _commit(1, "refs/heads/main", t0, "chore: initial import", None)
    for i in range(FILES):
        yield f"M 100644 inline {_path(i)}\n".encode() + _blob(f"# module {i}\nVALUE = 0\n")
    yield b"M 100644 inline src/limits.py\n" + _blob("MAX = 10\n")
    yield b"\n"
    for n in range(2, commits):
        kind = KINDS[n % len(KINDS)]
        yield _commit(n, "refs/heads/main", t0 + n * 60, f"{kind}: change {n} (#{n})", n - 1)
        if n == hotfix_on_main_at:
            yield b"M 100644 inline HOTFIX\n" + _blob("fixed\n")
        else:
            f = (n * 7919) % FILES
            yield f"M 100644 inline {_path(f)}\n".encode() + _blob(f"# module {f}\nVALUE = {n}\n")
        yield b"\n"
        if n == release_at:
            yield b"reset refs/tags/v1.0.0\nfrom :%d\n\n" % n
    fix = commits
    yield _commit(fix, "refs/heads/main", t0 + fix * 60, "fix: raise the limit (#99999)", fix - 1)
    yield b"M 100644 inline src/limits.py\n" + _blob("MAX = 20\n") + b"\n"
    hot = commits + 1
    yield _commit(hot, "refs/heads/release/1.0.0", t0 + hot * 60, "fix: hotfix (#1)", release_at)
    yield b"M 100644 inline HOTFIX\n" + _blob("fixed\n") + b"\n"


def ensure_repo(cache: Path, commits: int) -> Path:
    repo = cache / f"cut-{commits}"
    if (repo / ".bench-ready").exists():
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run([*GIT, "init", "-q", "-b", "main", str(repo)], check=True, env=ENV)
    proc = subprocess.Popen(
        [*GIT, "-C", str(repo), "fast-import", "--quiet"], stdin=subprocess.PIPE, env=ENV
    )
    assert proc.stdin is not None
    for chunk in _stream(commits):
        proc.stdin.write(chunk)
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run([*GIT, "-C", str(repo), "checkout", "-q", "-f", "main"], check=True, env=ENV)
    (repo / ".git" / "info" / "exclude").write_text(".bench-ready\n")
    (repo / ".bench-ready").write_text("")
    print(f"generated {commits} commits in {time.perf_counter() - started:.1f}s at {repo}")
    return repo


# -- the two contenders ----------------------------------------------------------------------------
@dataclass
class Step:
    name: str
    seconds: float


@dataclass
class Timer:
    steps: list[Step] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.steps.append(Step(name, time.perf_counter() - started))


def shipyard_cut_pick(repo_path: Path, branch: str, timer: Timer) -> None:
    """Swap this body for the full service call (cut + changelog + pick) when it exists."""
    git = CliGitRepository(str(repo_path), repo_path / ".shipyard-mirror-unused")
    with timer.step("resolve cut point"):
        cut = git.resolve(f"main~{CUT_BACK}")
        fix = git.resolve("main")
    with timer.step("is on mainline"):
        assert git.is_ancestor(cut, "main")
    with timer.step("create branch"):
        git.create_branch(branch, cut)
    with timer.step("changelog since v1.0.0"):
        entries = git.changelog(cut, since="v1.0.0", limit=2001)  # as show_release asks
        assert len(entries) == RELEASE_BACK - CUT_BACK, len(entries)
    with timer.step("previous fixes on main"):
        assert git.missing_changes(cut, "release/1.0.0", "v1.0.0") == []
    with timer.step("cherry-pick + publish"):
        plan = git.plan_pick(branch, [fix], BOT)
        git.apply_pick(plan)


def _raw(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True, env=ENV
    ).stdout


WT_ADD = "worktree add (raw only)"
WT_REMOVE = "worktree remove (raw only)"
LOG_FORMAT = "%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%s%x1f%b%x1e"  # CliGitRepository.log's fields
CHANGELOG_FORMAT = "%H%x1f%an%x1f%ae%x1f%s%x1f%b%x1e"  # CliGitRepository.changelog's fields


def raw_cut_pick(repo_path: Path, branch: str, timer: Timer) -> None:
    """The minimal plain-git equivalent, output read but not parsed beyond a count."""
    with timer.step("resolve cut point"):
        cut = _raw(repo_path, "rev-parse", "--verify", f"main~{CUT_BACK}^{{commit}}").strip()
        fix = _raw(repo_path, "rev-parse", "--verify", "main^{commit}").strip()
    with timer.step("is on mainline"):
        _raw(repo_path, "merge-base", "--is-ancestor", cut, "main")
    with timer.step("create branch"):
        _raw(repo_path, "branch", branch, cut)
    with timer.step("changelog since v1.0.0"):
        out = _raw(repo_path, "log", f"--format={CHANGELOG_FORMAT}", cut, "^v1.0.0")
        assert out.count("\x1e") == RELEASE_BACK - CUT_BACK
    with timer.step("previous fixes on main"):
        out = _raw(repo_path, "cherry", cut, "release/1.0.0", "v1.0.0")
        assert not [line for line in out.splitlines() if line.startswith("+")]
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) / "wt"
        with timer.step(WT_ADD):
            _raw(repo_path, "worktree", "add", "-q", str(where), branch)
        with timer.step("cherry-pick + publish"):
            _raw(where, "cherry-pick", "-x", fix)
        with timer.step(WT_REMOVE):
            _raw(repo_path, "worktree", "remove", "--force", str(where))


def _cleanup(repo: Path, branch: str) -> None:
    _raw(repo, "branch", "-D", branch)
    _raw(repo, "worktree", "prune")


def full_log(repo: Path, timer_s: Timer, timer_r: Timer) -> None:
    git = CliGitRepository(str(repo), repo / ".unused")
    with timer_s.step("log whole history (extra)"):
        n = len(git.log("main"))
    with timer_r.step("log whole history (extra)"):
        m = _raw(repo, "log", f"--format={LOG_FORMAT}", "main").count("\x1e")
    assert n == m


# -- report -----------------------------------------------------------------------------------------
def _medians(runs: list[Timer]) -> dict[str, float]:
    names = [s.name for s in runs[0].steps]
    return {
        n: statistics.median(next(s.seconds for s in r.steps if s.name == n) for r in runs)
        for n in names
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--commits", type=int, default=50_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "shipyard-bench")
    args = ap.parse_args()
    if args.commits < RELEASE_BACK + CUT_BACK + 10:
        raise SystemExit(f"--commits must be at least {RELEASE_BACK + CUT_BACK + 10}")
    repo = ensure_repo(args.cache, args.commits)
    status_before = _raw(repo, "status", "--porcelain")
    head_before = _raw(repo, "rev-parse", "HEAD")

    contenders: dict[str, Callable[[Path, str, Timer], None]] = {
        "shipyard": shipyard_cut_pick,
        "raw git": raw_cut_pick,
    }
    runs: dict[str, list[Timer]] = {k: [] for k in contenders}
    for rep in range(args.reps + 1):  # the first round warms the page cache and is dropped
        for name, fn in contenders.items():
            branch = f"release/bench-{name.replace(' ', '-')}-{rep}"
            timer = Timer()
            fn(repo, branch, timer)
            _cleanup(repo, branch)
            if rep:
                runs[name].append(timer)
    extra_s: list[Timer] = []
    extra_r: list[Timer] = []
    for _ in range(args.reps):
        ts, tr = Timer(), Timer()
        full_log(repo, ts, tr)
        extra_s.append(ts)
        extra_r.append(tr)

    assert _raw(repo, "status", "--porcelain") == status_before
    assert _raw(repo, "rev-parse", "HEAD") == head_before

    ship = _medians(runs["shipyard"])
    raw = _medians(runs["raw git"])
    ship_total = statistics.median(sum(s.seconds for s in t.steps) for t in runs["shipyard"])
    raw_total = statistics.median(sum(s.seconds for s in t.steps) for t in runs["raw git"])
    raw_no_wt = statistics.median(
        sum(s.seconds for s in t.steps if "raw only" not in s.name) for t in runs["raw git"]
    )
    log_s = _medians(extra_s)["log whole history (extra)"]
    log_r = _medians(extra_r)["log whole history (extra)"]

    print(
        f"\ncut + changelog + pick on {args.commits:,} commits, {FILES:,} files; "
        f"median of {args.reps} runs (git {_raw(repo, 'version').split()[-1]})\n"
    )
    print(f"{'step':<30}{'shipyard ms':>12}{'raw git ms':>12}{'ratio':>8}")
    print("-" * 62)
    for name in raw:
        if name in ship:
            print(f"{name:<30}{ship[name] * 1e3:>12.1f}{raw[name] * 1e3:>12.1f}"
                  f"{ship[name] / raw[name]:>8.2f}")  # fmt: skip
        else:
            print(f"{name:<30}{'-':>12}{raw[name] * 1e3:>12.1f}{'':>8}")
    print("-" * 62)
    ratio = ship_total / raw_no_wt
    print(f"{'total, raw without worktree':<30}{ship_total * 1e3:>12.1f}{raw_no_wt * 1e3:>12.1f}"
          f"{ratio:>8.2f}")  # fmt: skip
    print(f"{'total, raw with worktree':<30}{ship_total * 1e3:>12.1f}{raw_total * 1e3:>12.1f}"
          f"{ship_total / raw_total:>8.2f}")  # fmt: skip
    print(f"{'log whole history (parse)':<30}{log_s * 1e3:>12.1f}{log_r * 1e3:>12.1f}"
          f"{log_s / log_r:>8.2f}")  # fmt: skip
    print("(totals: medians of per-run sums; raw git needs a worktree to cherry-pick)")
    verdict = "MET" if ratio <= 1.5 else "MISSED"
    print(f"\ngoal: shipyard within 1.5x of raw git, strict total -> {verdict} ({ratio:.2f}x)")
    print("user's working copy and HEAD unchanged: yes")


if __name__ == "__main__":
    main()
