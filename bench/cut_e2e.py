"""Cut + changelog + pick on a large generated history, Shipyard's services against raw git.

    .venv/bin/python bench/cut_e2e.py [--commits 50000] [--since 2000] [--reps 40] [--profile]

The repository is generated once with ``git fast-import`` and cached in
``$TMPDIR/shipyard-bench-cut-<commits>`` (``--regen`` rebuilds it): a linear mainline of
``--commits`` squash-merged commits over 400 files in 25 directories, each commit changing 1-3
files, conventional-commit subjects with ``(#PR)`` numbers, 12 authors, some bodies, then
``git gc`` (which writes the commit-graph, as on any maintained repository). ``shipyard.yaml``
has no build command, so no build is queued. The previous release point sits ``--since``
commits below the tip; a ``fix(...)`` commit 5 below the tip changes the bottom of a file whose
top half changed after the previous release point, so picking it onto the release branch is a
real, clean three-way merge.

(``bench/cut.py`` times the git adapter alone, step by step; this one times the services.)
Shipyard runs end to end through its services on SQLite (fresh data dir, project registered
once). Per repetition: ``cut_release`` of the previous point as version X (untimed setup), then
timed: ``cut_release`` at the tip as version Y (mainline check, shipyard.yaml read and
validation, missing-picks check, branch, database rows), ``show_release`` of Y (changelog since
X, ~``--since`` commits parsed into entries), ``pick`` of the fix onto X (next candidate).
Versions descend across repetitions (900.0.0/900.1.0, 899.0.0/899.1.0, ...) so every
repetition sees the same state: no earlier release below Y carries picks, so the missing-picks
check is one query and no ``git cherry``.

Raw git does the same, in the same run on the same repository, one ``git`` process per
command, output captured and discarded:

* cut: ``rev-parse main``, ``merge-base --is-ancestor``, ``cat-file blob <sha>:shipyard.yaml``,
  ``branch release/<v> <sha>``;
* changelog: ``log --format=<Shipyard's fields> X..Y``; for reference also with its output in a
  memory file instead of a pipe, as Shipyard runs git (an extra row, not in the total);
* pick, two ways: ``worktree add`` + ``cherry-pick -x`` + ``worktree remove --force`` (what a
  person types), and plumbing without a worktree (``log -1`` for the author and message,
  ``read-tree`` into a temporary index, ``diff-tree -p`` | ``apply --cached``, ``write-tree``,
  ``commit-tree``, ``update-ref``): the cheapest honest equivalent on git 2.39, whose
  ``merge-tree`` has no ``--merge-base``. Ratios use the cheaper of the two.

Repetitions alternate which side runs first. Shipyard's time is split into git (subprocesses
started by ``CliGitRepository._exec`` and requests to its long-running ``cat-file --batch``),
SQL (cursor execute, commit, session close) and the rest (ORM, config parsing, changelog
parsing, services). ``--profile`` adds a cProfile of the Shipyard side.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sqlalchemy import event

from shipyard.adapters.git import cli
from shipyard.adapters.git.cli import CliGitRepository
from shipyard.bootstrap import bootstrap
from shipyard.domain.auth import Actor, Role
from shipyard.services import projects, releases
from shipyard.store.unit_of_work import SqlUnitOfWork

CONFIG = """\
project: bigrepo
mainline: main
versioning: {scheme: semver, initial: 1.0.0, bump: minor}
"""
AUTHORS = [
    ("Ada Lovelace", "ada@example.org"),
    ("Grace Hopper", "grace@example.org"),
    ("Linus Benedict", "linus@example.org"),
    ("Margaret Hamilton", "margaret@example.org"),
    ("Ken Thompson", "ken@example.org"),
    ("Barbara Liskov", "barbara@example.org"),
    ("Dennis Ritchie", "dmr@example.org"),
    ("Frances Allen", "fran@example.org"),
    ("Edsger Dijkstra", "ewd@example.org"),
    ("Radia Perlman", "radia@example.org"),
    ("John Backus", "backus@example.org"),
    ("Sophie Wilson", "sophie@example.org"),
]
TYPES = ["feat"] * 5 + ["fix"] * 5 + ["chore"] * 2 + ["refactor"] * 2 + ["docs", "test", "perf"]
VERBS = ["add", "handle", "support", "drop", "rework", "speed up", "guard", "log", "cache", "retry"]
NOUNS = ["timeouts", "empty input", "unicode names", "large payloads", "retries", "pagination",
         "auth tokens", "config reload", "metrics", "shutdown", "locale", "rate limits"]  # fmt: skip
DIRS = ["api", "auth", "billing", "cache", "cli", "config", "core", "db", "deploy", "docs",
        "events", "flags", "http", "jobs", "logs", "mail", "metrics", "models", "net", "queue",
        "search", "storage", "ui", "utils", "web"]  # fmt: skip
FILES_PER_DIR = 16
LINES = 40
FIX_BELOW_TIP = 5
# The fields CliGitRepository.changelog asks for (hash, author, email, subject, body).
LOG_FORMAT = "%H%x1f%an%x1f%ae%x1f%s%x1f%b%x1e"
ACTOR = Actor("ada", Role.DEPLOYER)
ADMIN = Actor("root", Role.ADMIN)


# -- the repository ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Repo:
    path: Path
    commits: int
    tip: str
    previous: str
    fix: str
    fix_file: str
    since: int


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n%s\n" % (len(raw), raw)


def _stream(commits: int, since: int, seed: int) -> Iterator[bytes]:
    """fast-import commands for the whole history; marks are commit numbers (1 = root)."""
    rng = random.Random(seed)
    files = [f"src/{d}/{d}_{i:02d}.py" for d in DIRS for i in range(FILES_PER_DIR)]
    content = {f: [f"{f.split('/')[-1][:-3]}_{k} = {k}" for k in range(LINES)] for f in files}
    fix_file = files[rng.randrange(len(files))]
    prev_at, fix_at = commits - since, commits - FIX_BELOW_TIP
    when = 1_546_300_800  # 2019-01-01
    pr = 100
    for n in range(1, commits + 1):
        when += rng.randint(300, 3600)
        name, email = AUTHORS[rng.randrange(len(AUTHORS))]
        if n == 1:
            subject, body = "chore: initial import", ""
            changes = [*files, "shipyard.yaml"]
        elif n == fix_at:
            pr += 1
            subject, body = f"fix(core): guard the last setting (#{pr})", "Reported in production."
            changes = [fix_file]
            content[fix_file][LINES - 2] = "# fixed: guarded\n" + content[fix_file][LINES - 2]
        else:
            pr += rng.randint(1, 3)
            kind = TYPES[rng.randrange(len(TYPES))]
            d = DIRS[rng.randrange(len(DIRS))]
            subject = f"{kind}({d}): {rng.choice(VERBS)} {rng.choice(NOUNS)} (#{pr})"
            body = "" if rng.random() < 0.6 else f"Closes #{pr - 1}.\n\nTested locally."
            changes = rng.sample(files, rng.randint(1, 3))
            for f in changes:
                top = n > prev_at - 100 and f == fix_file  # near the fix: top half only
                k = rng.randrange(LINES // 2 if top else LINES)
                content[f][k] = f"{f.split('/')[-1][:-3]}_{k} = {n}"
        message = subject + (f"\n\n{body}" if body else "") + "\n"
        out = [b"commit refs/heads/main\nmark :%d\n" % n]
        out.append(f"author {name} <{email}> {when} +0000\n".encode())
        out.append(f"committer {name} <{email}> {when} +0000\n".encode())
        out.append(_data(message))
        for f in changes:
            text = CONFIG if f == "shipyard.yaml" else "\n".join(content[f]) + "\n"
            out.append(f"M 100644 inline {f}\n".encode() + _data(text))
        yield b"".join(out) + b"\n"
    yield f"# fix file {fix_file}\n".encode()


def _git(repo: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, **kw)


def generate(commits: int, since: int, regen: bool) -> Repo:
    where = Path(tempfile.gettempdir()) / f"shipyard-bench-cut-{commits}"
    meta = where / "meta.json"
    if meta.exists() and not regen:
        m = json.loads(meta.read_text())
        if m.get("since") == since:
            return Repo(
                where / "repo.git", commits, m["tip"], m["previous"], m["fix"], m["file"], since
            )
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    repo = where / "repo.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(repo)], check=True)
    started = time.perf_counter()
    print(f"generating {commits:,} commits into {repo} ...", flush=True)
    marks = where / "marks"
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "fast-import", "--quiet", f"--export-marks={marks}"],
        stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None
    fix_file = ""
    for chunk in _stream(commits, since, seed=1):
        if chunk.startswith(b"# fix file "):
            fix_file = chunk.decode().split()[-1]
            continue
        proc.stdin.write(chunk)
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    _git(repo, "gc", "--quiet")
    shas = dict(line.split() for line in marks.read_text().splitlines())
    m = {
        "since": since,
        "tip": shas[f":{commits}"],
        "previous": shas[f":{commits - since}"],
        "fix": shas[f":{commits - FIX_BELOW_TIP}"],
        "file": fix_file,
    }
    meta.write_text(json.dumps(m))  # written last: a half-generated cache is never reused
    print(f"generated in {time.perf_counter() - started:.1f} s", flush=True)
    return Repo(repo, commits, m["tip"], m["previous"], m["fix"], fix_file, since)


def reset_refs(repo: Path) -> None:
    """Drop every branch but main (left by an earlier run) and stale worktrees."""
    refs = _git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/").stdout.decode()
    drop = [r for r in refs.split() if r != "refs/heads/main"]
    if drop:
        _git(repo, "update-ref", "--stdin", input="".join(f"delete {r}\n" for r in drop).encode())
    _git(repo, "worktree", "prune")


# -- timing helpers ------------------------------------------------------------------------------
@dataclass
class Split:
    """Where Shipyard's time goes: git subprocesses, SQL, the rest."""

    git_s: float = 0.0
    git_calls: int = 0
    sql_s: float = 0.0
    sql_calls: int = 0
    lookups: int = 0  # answered by the long-running cat-file --batch, counted in git_s

    def snapshot(self) -> tuple[float, int, float, int, int]:
        return self.git_s, self.git_calls, self.sql_s, self.sql_calls, self.lookups


SPLIT = Split()


def _timed_git(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            SPLIT.git_s += time.perf_counter() - t
            SPLIT.git_calls += 1

    return wrapper


def _timed_lookup(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            SPLIT.git_s += time.perf_counter() - t
            SPLIT.lookups += 1

    return wrapper


def _timed_sql(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            SPLIT.sql_s += time.perf_counter() - t

    return wrapper


def instrument(engine: Any) -> None:
    """Bench-only wrappers (the source is untouched): count git processes and SQL time."""
    batch = getattr(cli, "_CatFile", None)  # lookups through the long-running cat-file --batch
    if batch is not None:
        batch.lookup = _timed_lookup(batch.lookup)
    if hasattr(CliGitRepository, "_exec"):  # the one place every git process starts
        CliGitRepository._exec = _timed_git(CliGitRepository._exec)  # type: ignore[method-assign]
    else:
        CliGitRepository._run = _timed_git(CliGitRepository._run)  # type: ignore[method-assign]
        CliGitRepository.read_file = _timed_git(CliGitRepository.read_file)  # type: ignore[method-assign]
    SqlUnitOfWork.commit = _timed_sql(SqlUnitOfWork.commit)  # type: ignore[method-assign]
    SqlUnitOfWork.__exit__ = _timed_sql(SqlUnitOfWork.__exit__)  # type: ignore[method-assign]
    starts: list[float] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(*_: Any) -> None:
        starts.append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(*_: Any) -> None:
        SPLIT.sql_s += time.perf_counter() - starts.pop()
        SPLIT.sql_calls += 1


@dataclass
class Samples:
    times: dict[str, list[float]] = field(default_factory=dict)
    splits: dict[str, list[tuple[float, ...]]] = field(default_factory=dict)


@contextmanager
def measure(samples: Samples, op: str, record: bool, shipyard: bool = False) -> Iterator[None]:
    before = SPLIT.snapshot()
    t = time.perf_counter()
    yield
    dt = time.perf_counter() - t
    if record:
        samples.times.setdefault(op, []).append(dt)
        if shipyard:
            split = tuple(a - b for a, b in zip(SPLIT.snapshot(), before, strict=True))
            samples.splits.setdefault(op, []).append(split)


# -- the two sides -------------------------------------------------------------------------------
def shipyard_rep(
    svc: Any, repo: Repo, i: int, samples: Samples, record: bool, prof: cProfile.Profile | None
) -> None:
    x, y = f"{900 - i}.0.0", f"{900 - i}.1.0"
    releases.cut_release(svc, ACTOR, "bigrepo", sha=repo.previous, version=x)  # setup, untimed
    if prof:
        prof.enable()
    with measure(samples, "cut", record, shipyard=True):
        rel, rc1 = releases.cut_release(svc, ACTOR, "bigrepo", version=y)
    with measure(samples, "changelog", record, shipyard=True):
        view = releases.show_release(svc, ACTOR, "bigrepo", y)
    with measure(samples, "pick", record, shipyard=True):
        rc2 = releases.pick(svc, ACTOR, "bigrepo", x, [repo.fix])
    if prof:
        prof.disable()
    assert rel.base_sha == repo.tip and rc1.name == f"{y}-rc.1", (rel, rc1)
    assert view.previous_version == x, view.previous_version
    assert len(view.changelog) == repo.since, len(view.changelog)
    assert rc2.name == f"{x}-rc.2", rc2


def _raw(repo: Path, *args: str, ok: tuple[int, ...] = (0,), **kw: Any) -> bytes:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False, **kw)
    if done.returncode not in ok:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.decode()}")
    return done.stdout


def _raw_to_memory(repo: Path, *args: str) -> bytes:
    """As ``_raw``, with git's output in a memory file instead of a pipe, as Shipyard runs git."""
    out, err = os.memfd_create("out"), os.memfd_create("err")
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], stdout=out, stderr=err, check=False)
        if done.returncode != 0:
            raise SystemExit(f"git {' '.join(args)} failed")
        return os.pread(out, os.fstat(out).st_size, 0)
    finally:
        os.close(out)
        os.close(err)


def raw_rep(repo: Repo, i: int, samples: Samples, record: bool, scratch: Path) -> None:
    g = repo.path
    x, y = f"release/raw{900 - i}.0.0", f"release/raw{900 - i}.1.0"
    xw = f"release/raw{900 - i}.0.0-wt"
    _raw(g, "branch", x, repo.previous)  # setup, untimed (as Shipyard's cut of X)
    _raw(g, "branch", xw, repo.previous)
    with measure(samples, "cut", record):
        tip = _raw(g, "rev-parse", "main").decode().strip()
        _raw(g, "merge-base", "--is-ancestor", tip, "main")
        _raw(g, "cat-file", "blob", f"{tip}:shipyard.yaml")
        _raw(g, "branch", y, tip)
    with measure(samples, "changelog", record):
        out = _raw(g, "log", f"--format={LOG_FORMAT}", f"{repo.previous}..{tip}")
    assert out.count(b"\x1e") == repo.since, out.count(b"\x1e")
    if hasattr(os, "memfd_create"):
        with measure(samples, "changelog (memory file)", record):
            out = _raw_to_memory(g, "log", f"--format={LOG_FORMAT}", f"{repo.previous}..{tip}")
        assert out.count(b"\x1e") == repo.since, out.count(b"\x1e")
    with measure(samples, "pick (worktree)", record):
        wt = scratch / f"wt{i}"
        _raw(g, "worktree", "add", "--quiet", str(wt), xw)
        _raw(wt, "cherry-pick", "-x", repo.fix)
        _raw(g, "worktree", "remove", "--force", str(wt))
    with measure(samples, "pick (plumbing)", record):
        meta = _raw(g, "log", "-1", "--format=%an%x00%ae%x00%aI%x00%B", repo.fix).decode()
        name, email, date, message = meta.split("\x00", 3)
        env = os.environ | {"GIT_INDEX_FILE": str(scratch / f"index{i}")}
        _raw(g, "read-tree", x, env=env)
        patch = _raw(g, "diff-tree", "-p", "--binary", repo.fix)
        _raw(g, "apply", "--cached", input=patch, env=env)
        tree = _raw(g, "write-tree", env=env).decode().strip()
        env |= {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}
        text = f"{message.rstrip()}\n\n(cherry picked from commit {repo.fix})\n".encode()
        new = _raw(g, "commit-tree", tree, "-p", x, "-F", "-", input=text, env=env)
        _raw(g, "update-ref", f"refs/heads/{x}", new.decode().strip())
        os.unlink(scratch / f"index{i}")


def same_trees(repo: Repo, i: int) -> None:
    """Both raw picks and Shipyard's pick must land exactly the same tree."""
    v = f"{900 - i}.0.0"
    branches = (f"release/{v}", f"release/raw{v}", f"release/raw{v}-wt")
    trees = {_raw(repo.path, "rev-parse", f"{b}^{{tree}}").strip() for b in branches}
    assert len(trees) == 1, trees


# -- report --------------------------------------------------------------------------------------
def p90(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]


def totals(samples: Samples, ops: list[str]) -> list[float]:
    return [sum(v) for v in zip(*(samples.times[o] for o in ops), strict=True)]


def _row(label: str, ship: list[float] | None, raw: list[float], note: str) -> str:
    ms = 1000.0
    rm = statistics.median(raw)
    if ship is None:
        left, ratio = f"{'':>12} {'':>7}", ""
    else:
        sm = statistics.median(ship)
        left, ratio = f"{sm * ms:>12.1f} {p90(ship) * ms:>7.1f}", f"{sm / rm:.2f}x"
    return f"{label:<11} {left}   {rm * ms:>11.1f} {p90(raw) * ms:>7.1f}   {ratio:>6}   {note}"


def report(ship: Samples, raw: Samples, reps: int) -> None:
    picks = ("pick (plumbing)", "pick (worktree)")
    best, other = sorted(picks, key=lambda o: statistics.median(raw.times[o]))
    for p in picks:
        raw.times[f"total, {p}"] = totals(raw, ["cut", "changelog", p])
    ship.times["total"] = totals(ship, ["cut", "changelog", "pick"])
    print(f"\n{reps} repetitions each; ms; ratio = Shipyard median / raw git median")
    print(
        f"{'operation':<11} {'Shipyard med':>12} {'p90':>7}   {'raw git med':>11} {'p90':>7}   "
        f"{'ratio':>6}   raw side"
    )
    for op in ("cut", "changelog"):
        print(_row(op, ship.times[op], raw.times[op], op))
    print(_row("pick", ship.times["pick"], raw.times[best], best))
    print(_row("total", ship.times["total"], raw.times[f"total, {best}"], f"total, {best}"))
    print(_row("", ship.times["pick"], raw.times[other], other))
    print(_row("", ship.times["total"], raw.times[f"total, {other}"], f"total, {other}"))
    if "changelog (memory file)" in raw.times:
        memory = "changelog (memory file)"
        print(_row("", ship.times["changelog"], raw.times[memory], memory))

    print("\nShipyard's time split (medians, ms): git = CliGitRepository subprocesses (procs)")
    print("and requests to its long-running cat-file --batch (lookups), sql = cursor execute +")
    print("commit + session close (stmts), rest = ORM, parsing, services")
    print(
        f"{'operation':<11} {'total':>7} {'git':>7} {'procs':>6} {'lookups':>8} {'sql':>7} "
        f"{'stmts':>6} {'rest':>7}"
    )
    for op in ("cut", "changelog", "pick"):
        times, splits = ship.times[op], ship.splits[op]
        g, calls, q, stmts, looks = (statistics.median(s[k] for s in splits) for k in range(5))
        rest = statistics.median(t - s[0] - s[2] for t, s in zip(times, splits, strict=True))
        print(
            f"{op:<11} {statistics.median(times) * 1000:>7.1f} {g * 1000:>7.1f} {calls:>6.0f} "
            f"{looks:>8.0f} {q * 1000:>7.1f} {stmts:>6.0f} {rest * 1000:>7.1f}"
        )


MEASURED = ("adapters/git", "services/releases.py", "services/project_config.py", "store",
            "domain/changelog.py", "domain/commits.py", "domain/releases.py", "domain/versions.py")  # fmt: skip


def shipyard_revision() -> str:
    """The commit measured, and any uncommitted change on the measured code path."""
    root = Path(releases.__file__).resolve().parents[3]
    head = _raw(root, "rev-parse", "--short=12", "HEAD", ok=(0, 128)).decode().strip()
    paths = [f"src/shipyard/{p}" for p in MEASURED]
    dirty = _raw(root, "status", "--porcelain", "--", *paths, ok=(0, 128)).decode().split("\n")
    changed = [line[3:] for line in dirty if line.strip()]
    return (head or "?") + (f" + uncommitted: {', '.join(changed)}" if changed else " (clean)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=50_000, help="mainline length")
    parser.add_argument("--since", type=int, default=2_000, help="commits since previous release")
    parser.add_argument("--reps", type=int, default=40, help="timed repetitions per side")
    parser.add_argument("--regen", action="store_true", help="rebuild the cached repository")
    parser.add_argument("--profile", action="store_true", help="cProfile the Shipyard side")
    args = parser.parse_args()

    repo = generate(args.commits, args.since, args.regen)
    reset_refs(repo.path)
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    count = int(_git(repo.path, "rev-list", "--count", "main").stdout)
    print(
        f"repository: {repo.path} ({count:,} commits, {len(DIRS) * FILES_PER_DIR + 1} files), "
        f"{git_version.strip()}, python {sys.version.split()[0]}, SQLite, {os.cpu_count()} CPUs"
    )
    since = int(_git(repo.path, "rev-list", "--count", f"{repo.previous}..{repo.tip}").stdout)
    print(
        f"previous release {repo.previous[:12]} ({since:,} commits below the tip "
        f"{repo.tip[:12]}), fix {repo.fix[:12]} in {repo.fix_file}"
    )
    print(f"shipyard at {shipyard_revision()}")
    ship, raw = Samples(), Samples()
    prof = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-cut-") as tmp:
        rt = bootstrap(Path(tmp) / "data")
        instrument(rt.engine)
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        projects.add_project(rt.services, ADMIN, str(repo.path))
        started = time.perf_counter()
        for i in range(args.reps + 1):  # repetition 0 warms both sides up and is not recorded
            record = i > 0
            for side in ("shipyard", "raw") if i % 2 else ("raw", "shipyard"):
                if side == "shipyard":
                    shipyard_rep(rt.services, repo, i, ship, record, prof if record else None)
                else:
                    raw_rep(repo, i, raw, record, scratch)
            same_trees(repo, i)
        elapsed = time.perf_counter() - started
        rt.worker().drain()  # nothing to build: shipyard.yaml has no build command
        rt.close()
    reset_refs(repo.path)
    report(ship, raw, args.reps)
    print(f"\nbench loop: {elapsed:.1f} s")
    if prof:
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(20)
        print(out.getvalue())


if __name__ == "__main__":
    main()
