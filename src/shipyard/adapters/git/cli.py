"""Git through the `git` binary, without ever touching the user's working copy, index or HEAD.

Cherry-picks are merged with `git merge-tree --write-tree` (no worktree, no index) and published
with a compare-and-swap `update-ref`, so a conflict leaves the branch exactly as it was.

git 2.39's merge-tree has no ``--merge-base``, which a cherry-pick needs (the base is the picked
commit's parent). We get the same merge by handing it a throwaway commit: the branch tip's tree
with the picked commit's parent as its only parent. Then the merge base is exactly that parent,
and git's own merge machinery (ort: renames, modes) does the three-way merge.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from shipyard.domain.changelog import ChangelogEntry, changelog_entries
from shipyard.domain.commits import Commit
from shipyard.errors import AdapterError, ConflictError, ErrorCode, InvalidError, NotFoundError
from shipyard.ports.git import Identity, PickedCommit, PickPlan

ZERO = "0" * 40
# NUL cannot occur in a commit's names or message, so NUL-separated fields (and -z between
# commits) parse any history, whatever control characters its messages hold.
_LOG_FIELDS = ["%H", "%P", "%an", "%ae", "%aI", "%s", "%b"]
# What a pick needs of a commit (and of the branch tip: its SHA and tree), see _CommitMeta.
_META_FORMAT = "%x00".join(["%H", "%T", "%P", "%an", "%ae", "%aI", "%B"])
# What a changelog entry needs, in changelog_entries' order: sha, author, email, subject, body.
_CHANGELOG_FIELDS = ["%H", "%an", "%ae", "%s", "%b"]
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SAFE_REV = re.compile(r"^[^-\s][^\s]*$")
_GIT_OPTS = (
    "-c", "core.quotepath=off",
    "-c", "advice.detachedHead=false",
    "-c", "log.showSignature=false",
    "-c", "color.ui=never",
    "-c", "core.hooksPath=/dev/null",
    "-c", "gc.auto=0",
)  # fmt: skip


class _CommitMeta(NamedTuple):
    sha: str
    tree: str
    parents: str  # space-separated
    author_name: str
    author_email: str
    authored_at: str  # strict ISO 8601, as GIT_AUTHOR_DATE takes it
    message: str


class _Watchdog:
    """One daemon thread that kills the git processes still running at their deadline.

    ``watch`` and ``cancel`` only take a lock and push or flag a heap entry; the thread sleeps
    until the earliest deadline. Every call has the same timeout, so finished entries reach the
    top of the heap in order and are dropped there."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the thread does not survive a fork

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, list[Any]]] = []  # (deadline, seq, [proc, state])
        self._seq = itertools.count()
        self._started = False

    def watch(self, proc: subprocess.Popen[bytes], timeout_s: float) -> list[Any]:
        entry: list[Any] = [proc, _WATCHING]
        with self._cond:
            if not self._started:
                threading.Thread(target=self._loop, name="git-watchdog", daemon=True).start()
                self._started = True
            while self._heap and self._heap[0][2][1] is _DONE:
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, (time.monotonic() + timeout_s, next(self._seq), entry))
            if self._heap[0][2] is entry:
                self._cond.notify()  # the new deadline is the earliest: the thread sleeps less
        return entry

    def cancel(self, entry: list[Any]) -> bool:
        """Stop watching; True when the watchdog killed the process first."""
        with self._cond:
            fired = entry[1] is _FIRED
            entry[:] = [None, _DONE]
        return fired

    def _loop(self) -> None:
        cond = self._cond
        with cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2][1] is _DONE or self._heap[0][0] <= now):
                    _, _, entry = heapq.heappop(self._heap)
                    if entry[1] is _WATCHING:
                        entry[1] = _FIRED
                        with suppress(OSError):
                            entry[0].kill()
                cond.wait(self._heap[0][0] - now if self._heap else None)


_WATCHING, _FIRED, _DONE = "watching", "fired", "done"
_WATCHDOG = _Watchdog()


@functools.lru_cache(maxsize=8)
def _git_binary(search_path: str | None) -> str:
    """Where ``git`` is on this PATH, found once: given a bare name, the child would try
    ``execve`` in every PATH directory before the right one, on every call."""
    return shutil.which("git", path=search_path) or "git"


def _scratch_fd(opened: list[int]) -> int:
    """An anonymous read-write file for a git process's stdin, stdout or stderr; appended to
    ``opened`` for the caller to close. In memory on Linux; an unlinked temporary file elsewhere."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("shipyard-git")
    else:  # pragma: no cover - not Linux
        fd, path = tempfile.mkstemp(prefix="shipyard-git-")
        os.unlink(path)
    opened.append(fd)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)  # the child reads from the start: it shares this offset


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class _CatFile:
    """A long-running ``git cat-file --batch``: a lookup (a ref's commit, a file at a commit)
    is a line written and an answer read, about 0.1 ms, instead of a git process, 1.5-2 ms.

    Refs and new objects are looked up afresh on every request (git re-reads loose refs and
    packed-refs when they change, and rescans packs on a miss), so the answers are those of a
    new ``git rev-parse`` or ``git cat-file``. One request at a time (a lock); the shared
    watchdog kills a request that hangs. When the process cannot answer, ``lookup`` says so
    and the caller runs a one-off git process as before."""

    UNAVAILABLE = ("", "", b"")
    GIVE_UP = 5  # consecutive failed requests before this process is not tried again

    def __init__(self, argv: list[str], env: dict[str, str], timeout_s: float) -> None:
        self._argv = [*argv, "cat-file", "--batch"]
        self._env = env
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._held: list[subprocess.Popen[bytes]] = []  # the running process, if any
        self._pid = os.getpid()
        self._failures = 0
        weakref.finalize(self, _stop_all, self._held)

    def lookup(self, name: str) -> tuple[str, str, bytes] | None:
        """(object id, type, content) of what ``name`` names; None when it names nothing (or
        is ambiguous); UNAVAILABLE when the process could not answer."""
        if "\n" in name or "\r" in name:
            return self.UNAVAILABLE
        if self._pid != os.getpid():  # a forked child must not share the parent's pipes
            self._lock, self._held[:], self._pid = threading.Lock(), [], os.getpid()
        with self._lock:
            for _ in range(2):  # a process that died (killed, say) is restarted once
                if self._failures >= self.GIVE_UP:
                    return self.UNAVAILABLE
                answer = self._request(name)
                if answer is not self.UNAVAILABLE:
                    self._failures = 0
                    return answer
                self._failures += 1
            return self.UNAVAILABLE

    def _request(self, name: str) -> tuple[str, str, bytes] | None:
        if not self._held:
            try:
                self._held.append(
                    subprocess.Popen(
                        self._argv,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        env=self._env,
                    )
                )
            except OSError:
                return self.UNAVAILABLE
        proc = self._held[0]
        assert proc.stdin is not None and proc.stdout is not None
        watch = _WATCHDOG.watch(proc, self._timeout)
        answer: tuple[str, str, bytes] | None
        try:
            proc.stdin.write(name.encode() + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline()
            if header.endswith((b" missing\n", b" ambiguous\n")):
                answer = None
            else:
                oid, kind, size = header.decode().split()
                content = proc.stdout.read(int(size) + 1)  # the object and a newline
                if len(content) != int(size) + 1:
                    raise ValueError("short read")
                answer = oid, kind, content[:-1]
        except (OSError, ValueError):
            _stop_all(self._held)
            answer = self.UNAVAILABLE
        if _WATCHDOG.cancel(watch):  # hung: no retry, no one-off process to wait for as well
            _stop_all(self._held)
            raise AdapterError(f"git cat-file timed out after {self._timeout:g}s")
        return answer


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    while procs:
        proc = procs.pop()
        with suppress(OSError):
            proc.kill()
        with suppress(OSError, subprocess.TimeoutExpired):
            proc.wait(5)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with suppress(OSError):
                    pipe.close()


def _check_rev(rev: str) -> str:
    """Refuse what git would read as an option (``-x``) or what is no revision at all."""
    if not _SAFE_REV.match(rev):
        raise InvalidError(f"{rev!r} is not a commit reference", details={"rev": rev})
    return rev


def _is_url(source: str) -> bool:
    return "://" in source or source.startswith("git@")


class CliGitRepository:
    """A project's repository: a local path in place, or a URL mirrored into ``mirror_dir``."""

    def __init__(
        self, source: str, mirror_dir: Path, *, timeout_s: float = 300.0, push: bool = False
    ) -> None:
        """``push``: for a URL, also move release branches on the remote (lease-protected)."""
        self.source = source
        self._remote = _is_url(source)
        self.git_dir = mirror_dir if self._remote else Path(source)
        self._timeout = timeout_s
        self._push = push and self._remote
        self._verified = False  # a local path is probed once per instance, not per operation
        self._batch: _CatFile | None = None

    def _publish(self, branch: str, new: str, old: str) -> None:
        """Mirror a local ref move on the remote; undo it locally when the remote refuses.

        ``--force-with-lease=<ref>:<old>`` is the remote's compare-and-swap (empty: must not
        exist), so a release branch someone else moved is never overwritten."""
        if not self._push:
            return
        ref = f"refs/heads/{branch}"
        spec = f":{ref}" if new == ZERO else f"{new}:{ref}"
        lease = f"--force-with-lease={ref}:{'' if old == ZERO else old}"
        done = self._run("push", "--quiet", "--porcelain", self.source, lease, spec, check=False)
        if done.returncode == 0:
            return
        if old == ZERO:
            self._run("update-ref", "-d", ref, new, check=False)
        else:
            self._run("update-ref", ref, old, new, check=False)
        raise ConflictError(
            f"the remote refused to move {branch}; it may have changed there",
            details={"branch": branch, "remote": self.source, "git": done.stderr.strip()[-500:]},
        )

    # -- plumbing ---------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        keep = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
        return keep | {
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Shipyard",
            "GIT_AUTHOR_EMAIL": "shipyard@localhost",
            "GIT_COMMITTER_NAME": "Shipyard",
            "GIT_COMMITTER_EMAIL": "shipyard@localhost",
        }

    def _exec(
        self, args: Sequence[str], stdin: bytes | None, env: dict[str, str] | None, cwd: Path | None
    ) -> tuple[int, bytes, bytes]:
        """Run git with its input and output in memory files, not pipes.

        Git writes a big output (a changelog's ``log``) without ever waiting for a reader, and
        we wait for git to exit rather than poll its pipes: a 2,000-commit log comes back in
        about 60% of the time. The timeout is the shared watchdog thread, not
        ``run(timeout=)``, whose polling wait costs ~1 ms on every call, nor a ``Timer`` per
        call, whose thread start costs 0.1-0.8 ms (more on a busy machine)."""
        env = env or self._env()
        git = _git_binary(env.get("PATH"))
        cmd = [git, *_GIT_OPTS]
        if cwd is None:
            cmd += ["-C", str(self.git_dir)]
        fds: list[int] = []
        try:
            out_fd, err_fd = _scratch_fd(fds), _scratch_fd(fds)
            in_fd: int = subprocess.DEVNULL
            if stdin is not None:
                in_fd = _scratch_fd(fds)
                _write_all(in_fd, stdin)
            try:
                proc = subprocess.Popen(
                    [*cmd, *args],
                    stdin=in_fd,
                    stdout=out_fd,
                    stderr=err_fd,
                    env=env,
                    cwd=cwd,
                )
            except OSError as exc:
                _git_binary.cache_clear()  # moved or gone: look it up again next time
                raise AdapterError(f"git {args[0]} could not run: {exc}") from exc
            watch = _WATCHDOG.watch(proc, self._timeout)
            try:
                proc.wait()
            finally:
                fired = _WATCHDOG.cancel(watch)
            if fired:
                raise AdapterError(f"git {args[0]} timed out after {self._timeout:g}s")
            return proc.returncode, _read_all(out_fd), _read_all(err_fd)
        finally:
            for fd in fds:
                os.close(fd)

    def _run(
        self,
        *args: str,
        check: bool = True,
        input_text: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        stdin = input_text.encode() if input_text is not None else None
        code, out, err = self._exec(args, stdin, env, cwd)
        done = subprocess.CompletedProcess(
            list(args), code, out.decode(errors="replace"), err.decode(errors="replace")
        )
        if check and done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise AdapterError(f"git {args[0]} failed: {detail[-1] if detail else done.returncode}")
        return done

    def _ensure(self) -> None:
        if self._remote:
            if not (self.git_dir / "HEAD").exists():
                self.git_dir.parent.mkdir(parents=True, exist_ok=True)
                self._run(
                    "clone", "--mirror", "--quiet", self.source, str(self.git_dir), cwd=Path("/")
                )
            return
        if self._verified:
            return
        probe = self._run("rev-parse", "--git-dir", check=False)
        if probe.returncode != 0:
            raise NotFoundError(f"{self.source} is not a git repository")
        self._verified = True

    # -- port -------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._ensure()
        if self._remote:
            # no --prune: release branches made here (push=False) must survive a refresh
            self._run("fetch", "--quiet", "origin")

    def _lookup(self, name: str) -> tuple[str, str, bytes] | None:
        """``_CatFile.lookup`` through this repository's batch process (started on first use,
        once the repository is known to be there)."""
        if not (self._verified or (self._remote and (self.git_dir / "HEAD").exists())):
            return _CatFile.UNAVAILABLE
        if self._batch is None:
            env = self._env()
            cmd = [_git_binary(env.get("PATH")), *_GIT_OPTS, "-C", str(self.git_dir)]
            self._batch = _CatFile(cmd, env, self._timeout)
        return self._batch.lookup(name)

    def resolve(self, rev: str) -> str:
        _check_rev(rev)
        found = self._lookup(f"{rev}^{{commit}}")
        if found is None:
            raise NotFoundError(
                f"unknown commit {rev!r}", code=ErrorCode.UNKNOWN_SHA, details={"rev": rev}
            )
        if found is not _CatFile.UNAVAILABLE:
            return found[0]
        done = self._run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False
        )
        if done.returncode != 0:
            raise NotFoundError(
                f"unknown commit {rev!r}", code=ErrorCode.UNKNOWN_SHA, details={"rev": rev}
            )
        return done.stdout.strip()

    def branch_tip(self, branch: str) -> str | None:
        ref = branch if branch == "HEAD" or branch.startswith("refs/") else f"refs/heads/{branch}"
        found = self._lookup(f"{ref}^{{commit}}")
        if found is not _CatFile.UNAVAILABLE:
            return found[0] if found else None
        done = self._run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if ancestor == descendant and _FULL_SHA.match(ancestor):
            return True  # a commit is its own ancestor; cutting at the tip needs no git process
        done = self._run(
            "merge-base", "--is-ancestor", _check_rev(ancestor), _check_rev(descendant), check=False
        )
        if done.returncode not in (0, 1):
            raise AdapterError(f"git merge-base failed: {done.stderr.strip()}")
        return done.returncode == 0

    def _log_fields(
        self, fields: Sequence[str], until: str, since: str | None, limit: int | None = None
    ) -> Iterator[str]:
        """``git log -z`` of ``until`` but not ``since``, ``fields`` NUL-separated: the fields of
        every commit, newest first, one after another (zip ``len(fields)`` of it per commit)."""
        rng = [_check_rev(until), f"^{_check_rev(since)}"] if since else [_check_rev(until)]
        count = [] if limit is None else [f"--max-count={max(limit, 0)}"]
        out = self._run("log", "-z", f"--format={'%x00'.join(fields)}", *count, *rng, "--").stdout
        parts = out.split("\0")
        del parts[len(parts) - len(parts) % len(fields) :]  # the trailing "" after -z
        return iter(parts)

    def log(self, until: str, since: str | None = None) -> list[Commit]:
        f = self._log_fields(_LOG_FIELDS, until, since)
        return [
            Commit(
                sha,
                tuple(parents.split()),
                name,
                email,
                datetime.fromisoformat(date),
                subject,
                body.strip(),
            )
            for sha, parents, name, email, date, subject, body in zip(
                f, f, f, f, f, f, f, strict=True
            )
        ]

    def authors(self, until: str, since: str | None = None) -> set[tuple[str, str]]:
        rng = [_check_rev(until), f"^{_check_rev(since)}"] if since else [_check_rev(until)]
        out = self._run(
            "-c",
            f"mailmap.blob={_check_rev(until)}:.mailmap",  # the committed one, bare or not
            "log",
            "-z",
            "--max-count=5000",
            "--format=%an%x00%ae%x00%aN%x00%aE",
            *rng,
            "--",
        ).stdout
        parts = out.split("\0")
        del parts[len(parts) - len(parts) % 4 :]
        f = iter(parts)
        found: set[tuple[str, str]] = set()
        for name, email, mapped_name, mapped_email in zip(f, f, f, f, strict=True):
            found.update({(name, email), (mapped_name, mapped_email)})
        return found

    def changelog(
        self,
        until: str,
        since: str | None = None,
        *,
        limit: int | None = None,
        picked: bool = False,
    ) -> list[ChangelogEntry]:
        f = self._log_fields(_CHANGELOG_FIELDS, until, since, limit)
        return changelog_entries(zip(f, f, f, f, f, strict=True), picked=picked)

    def missing_changes(self, upstream: str, head: str, base: str) -> list[str]:
        out = self._run("cherry", *(_check_rev(r) for r in (upstream, head, base))).stdout
        return [line[2:].strip() for line in out.splitlines() if line.startswith("+ ")]

    def create_branch(self, branch: str, sha: str) -> None:
        _check_rev(sha)
        done = self._run(
            "update-ref", f"refs/heads/{branch}", f"{sha}^{{commit}}", ZERO, check=False
        )
        if done.returncode != 0:
            tip = self.branch_tip(branch)
            if tip is None:
                self.resolve(sha)  # NotFoundError(UNKNOWN_SHA) when that is why
                raise AdapterError(f"could not create branch {branch}: {done.stderr.strip()}")
            raise ConflictError(
                f"branch {branch} already exists (at {tip[:12]})",
                details={"branch": branch, "tip": tip},
            )
        if self._push:
            self._publish(branch, self.resolve(branch), ZERO)

    def delete_branch(self, branch: str, expected_sha: str) -> None:
        """A no-op when the branch is gone; ConflictError when someone moved it meanwhile."""
        done = self._run("update-ref", "-d", f"refs/heads/{branch}", expected_sha, check=False)
        if done.returncode != 0:
            tip = self.branch_tip(branch)
            if tip is not None:
                raise ConflictError(
                    f"branch {branch} moved to {tip[:12]}; not deleting it",
                    details={"branch": branch, "tip": tip, "expected": expected_sha},
                )
            return
        self._publish(branch, ZERO, self.resolve(expected_sha))

    def plan_pick(self, branch: str, shas: Sequence[str], committer: Identity) -> PickPlan:
        old_tip, tip_tree, shas, meta = self._pick_inputs(branch, shas)
        already = self._on_branch(old_tip, shas)
        if already:
            short = ", ".join(s[:12] for s in already)
            raise ConflictError(
                f"{short} {'is' if len(already) == 1 else 'are'} already on {branch}",
                code=ErrorCode.ALREADY_PICKED,
                details={"shas": already},
            )
        tip, tree = old_tip, tip_tree
        picked: list[PickedCommit] = []
        for sha in shas:
            tip, tree = self._pick_one(branch, tip, tree, meta[sha], committer)
            picked.append(PickedCommit(sha, tip))
        return PickPlan(branch, old_tip, tip, tuple(picked))

    def _pick_inputs(
        self, branch: str, revs: Sequence[str]
    ) -> tuple[str, str, list[str], dict[str, _CommitMeta]]:
        """The branch tip, its tree, the picked commits' full SHAs and what a pick needs of them.

        Usually one ``git log --no-walk`` reads it all. When git refuses it, or two of them name
        the same commit, ``branch_tip`` and ``resolve`` say which one is wrong."""
        ref = f"refs/heads/{branch}"
        if all(_SAFE_REV.match(r) and r[0] != "^" and ".." not in r for r in revs):  # no ranges
            metas = self._commit_meta([ref, *revs])
            if metas is not None and len(metas) == 1 + len(revs):
                tip, *picks = metas
                return tip.sha, tip.tree, [m.sha for m in picks], {m.sha: m for m in picks}
        old_tip = self.branch_tip(branch)
        if old_tip is None:
            raise NotFoundError(f"branch {branch} not found", details={"branch": branch})
        shas = self._resolve_all(revs)
        metas = self._commit_meta([old_tip, *dict.fromkeys(s for s in shas if s != old_tip)])
        if metas is None:
            raise AdapterError(f"git log could not read the commits to pick onto {branch}")
        return old_tip, metas[0].tree, shas, {m.sha: m for m in metas}

    def _commit_meta(self, revs: Sequence[str]) -> list[_CommitMeta] | None:
        """Each commit once, in the order given (git drops repeats and non-commits); None when
        git refuses a rev."""
        done = self._run(
            "log",
            "--no-walk=unsorted",
            "-z",
            f"--format={_META_FORMAT}",
            *(f"{r}^{{commit}}" for r in revs),
            "--",
            check=False,
        )
        if done.returncode != 0:
            return None
        f = iter(done.stdout.split("\0")[:-1])  # the trailing "" after -z
        return [_CommitMeta(*fields) for fields in zip(f, f, f, f, f, f, f, strict=True)]

    def _resolve_all(self, revs: Sequence[str]) -> list[str]:
        """Full SHAs in one call; on failure, ``resolve`` names the culprit."""
        specs = [f"{_check_rev(r)}^{{commit}}" for r in revs]
        done = self._run("rev-parse", *specs, check=False)  # revs checked: no options
        out = done.stdout.split()
        if done.returncode != 0 or len(out) != len(revs):
            return [self.resolve(r) for r in revs]
        return out

    def _on_branch(self, tip: str, shas: Sequence[str]) -> list[str]:
        """Commits already on the branch by ancestry or by patch-id (an earlier pick of them).

        Patch-ids are compared only with the branch's own commits (those not reachable from the
        picked commits: the release branch's earlier picks), so the cost stays tiny on big repos.
        For one commit, a single ``rev-list --left-right --count`` answers the ancestry and
        whether the branch has any such commit at all (none, right after a cut)."""
        if len(shas) == 1:
            counts = self._run("rev-list", "--left-right", "--count", f"{tip}...{shas[0]}", "--")
            branch_only, pick_only = counts.stdout.split()
            if pick_only == "0":
                return list(shas)  # reachable from the tip: on the branch by ancestry
            if branch_only == "0":
                return []  # every commit of the branch is in the pick's history: nothing to match
            found: list[str] = []
        else:
            found = [s for s in shas if self.is_ancestor(s, tip)]
        rest = [s for s in shas if s not in found]
        if not rest:
            return found
        branch_ids = set(self._patch_ids(tip, "--not", *rest).values())
        if not branch_ids:
            return found
        wanted = self._patch_ids("--no-walk=unsorted", *rest)
        return found + [s for s in rest if wanted.get(s) in branch_ids]

    def _patch_ids(self, *revs: str) -> dict[str, str]:
        show = self._run(
            "log", "--no-merges", "-p", "--no-color", "--no-ext-diff", "--format=commit %H", *revs
        ).stdout
        if not show.strip():
            return {}
        out = self._run("patch-id", "--stable", input_text=show).stdout
        ids: dict[str, str] = {}
        for line in out.splitlines():
            pid, sha = line.split()
            ids[sha] = pid
        return ids

    def _pick_one(
        self, branch: str, tip: str, tip_tree: str, meta: _CommitMeta, committer: Identity
    ) -> tuple[str, str]:
        """One pick on top of ``tip``: (new commit, its tree). Three git calls, no worktree."""
        sha = meta.sha
        if len(meta.parents.split()) != 1:
            raise InvalidError(
                f"{sha[:12]} is a merge commit; pick the commits it merged instead",
                details={"sha": sha},
            )
        tree = self._three_way(branch, meta.parents.strip(), tip_tree, sha)
        if tree == tip_tree:
            raise ConflictError(
                f"{sha[:12]} changes nothing on {branch}: its change is already there",
                code=ErrorCode.ALREADY_PICKED,
                details={"shas": [sha]},
            )
        env = self._env() | {
            "GIT_AUTHOR_NAME": meta.author_name,
            "GIT_AUTHOR_EMAIL": meta.author_email,
            "GIT_AUTHOR_DATE": meta.authored_at,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
        text = meta.message.rstrip("\n") + f"\n\n(cherry picked from commit {sha})\n"
        new = self._run("commit-tree", tree, "-p", tip, "-F", "-", input_text=text, env=env)
        return new.stdout.strip(), tree

    def _three_way(self, branch: str, base: str, ours_tree: str, theirs: str) -> str:
        """merge-tree with ``base`` as the merge base: see the module docstring for the trick."""
        stand_in = self._run("commit-tree", ours_tree, "-p", base, "-m", "shipyard pick base")
        merged = self._run(
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            "-z",
            stand_in.stdout.strip(),
            theirs,
            check=False,
        )
        fields = merged.stdout.split("\0")
        if merged.returncode == 1:
            files = sorted({f for f in fields[1:] if f})
            raise ConflictError(
                f"picking {theirs[:12]} onto {branch} conflicts in: {', '.join(files)}",
                code=ErrorCode.PICK_CONFLICT,
                hint="resolve it on the mainline or pick the prerequisite commits first",
                details={"files": files, "sha": theirs},
            )
        if merged.returncode != 0 or not fields[0].strip():
            raise AdapterError(f"git merge-tree failed: {merged.stderr.strip()}")
        return fields[0].strip()

    def apply_pick(self, plan: PickPlan) -> None:
        done = self._run(
            "update-ref", f"refs/heads/{plan.branch}", plan.new_tip, plan.old_tip, check=False
        )
        if done.returncode != 0:
            raise ConflictError(
                f"{plan.branch} moved while picking; try again", details={"branch": plan.branch}
            )
        self._publish(plan.branch, plan.new_tip, plan.old_tip)

    def revert_pick(self, plan: PickPlan) -> None:
        done = self._run(
            "update-ref", f"refs/heads/{plan.branch}", plan.old_tip, plan.new_tip, check=False
        )
        if done.returncode == 0:
            self._publish(plan.branch, plan.old_tip, plan.new_tip)

    def read_file(self, sha: str, path: str) -> bytes | None:
        _check_rev(sha)
        found = self._lookup(f"{sha}:{path}")
        if found is not _CatFile.UNAVAILABLE:
            return found[2] if found and found[1] == "blob" else None
        code, out, _ = self._exec(("cat-file", "blob", f"{sha}:{path}"), None, None, None)
        return out if code == 0 else None

    @contextmanager
    def checkout(self, sha: str) -> Iterator[Path]:
        tmp = Path(tempfile.mkdtemp(prefix="shipyard-worktree-"))
        where = tmp / "src"
        try:
            self._run("worktree", "add", "--detach", "--quiet", str(where), self.resolve(sha))
            yield where
        finally:
            self._run("worktree", "remove", "--force", str(where), check=False)
            shutil.rmtree(tmp, ignore_errors=True)
            self._run("worktree", "prune", check=False)
