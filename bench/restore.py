"""Time to 100% stable after a failing verdict or an abort, and requests lost to weight changes.

    .venv/bin/python bench/restore.py [--runs 5] [--interval 0.5s] [--json PATH] [--keep]

Everything is real and on 127.0.0.1, as in ``tests/e2e/test_rollout_cli.py``: a ``shipyard
serve`` process (``tests.support.server``), a git repository (``tests.support.gitrepo``) holding
the sample service (``tests.support.sample_service``), deployed by the ``local`` target (2
instances per version) behind the HAProxy router on a free port, background load from
``tests.support.loadgen``. The CLI does what a user does (project add, release cut, pick, deploy,
rollout abort); status and explain are read from the documented API.

Each run has four phases (the abort runs twice: CLI, then API), each under load (loadgen, 2
workers) plus a probe (2 threads, keep-alive clients) that timestamps every answer with
``time.time()`` and the candidate that gave it (the ``candidate`` field of the sample service's
JSON; a 500 comes only from the bad version, whose knob injects it, since the stable one never
fails):

1. verdict: a bad candidate (``error_rate`` 0.5) under policy ``failfast`` (50%, then an analysis
   of ``errors`` every ``--interval`` with ``failure_limit: 0``). The analysis fails, the engine
   records the ``aborting`` decision (its ``at`` in ``GET .../deployments/{id}/rollout``, the
   server's wall clock in UTC) and puts 100% back on stable. Restore time = receive time of the
   last answer from the bad candidate minus that ``at``.
2. human abort: a healthy candidate under policy ``held`` (50%, then ``pause: {}``); once the
   probe sees it answer, ``shipyard rollout abort`` is run. Time = last answer from the aborted
   candidate minus the moment the CLI process was started (split at the ``aborting`` record).
   The same again with ``POST .../rollout/abort`` sent straight to the API (what a script or the
   dashboard does), which leaves out the CLI's own start-up (a Python process: 0.4-2 s here).
3. weight moves: a healthy candidate under policy ``steps`` (10% -> 25% -> 50% with 1 s pauses,
   then 100% and the old version retired). It becomes the stable one for the next run.

Failed requests caused by weight changes = connection errors + 502/503/504 seen by load and probe
(the bad version's own 500s are counted apart). The goals are the issue's: restore < 1 s, 0
failed requests. The bench never asserts; it prints and, with ``--json``, writes the numbers.
Every process it starts (server, HAProxy, instances) is stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.support import loadgen, sample_service  # noqa: E402
from tests.support.gitrepo import GitRepo  # noqa: E402
from tests.support.server import ServerProcess, free_port  # noqa: E402

from shipyard.adapters.routers.haproxy import HaproxyRouter  # noqa: E402
from shipyard.adapters.targets.local import LocalTarget  # noqa: E402
from shipyard.ports.routers import RouteRef  # noqa: E402

PROJECT, ENV = "shop", "production"
GOAL_RESTORE_S = 1.0
PROXY_FAILURES = (502, 503, 504)
PHASE_TIMEOUT_S = 45.0  # one phase never waits longer than this (loadgen's own cap is 60 s)
TAIL_S = 1.0  # keep probing this long after the rollout ended: the all-stable window
PROBE_MAX = 200_000  # answers kept per phase, at most


def config(port: int, interval: str) -> str:
    return f"""\
project: {PROJECT}
versioning: {{initial: 1.0.0}}
build:
  command: tar czf "$SHIPYARD_ARTIFACTS_DIR/app.tar.gz" sample_service.py sample.json
  artifacts: ["*.tar.gz"]
environments:
  - name: {ENV}
    target: {{kind: local, start: "{sample_service.START}", instances: 2, health_timeout: 20}}
    router: {{port: {port}}}
    policy: steps
policies:
  failfast:
    steps:
      - set_weight: 50
      - analysis: {{checks: [errors], interval: {interval}, duration: 30s}}
  held:
    steps:
      - set_weight: 50
      - pause: {{}}
  steps:
    steps:
      - set_weight: 10
      - pause: 1s
      - set_weight: 25
      - pause: 1s
      - set_weight: 50
      - pause: 1s
checks:
  errors: {{metric: error_ratio, judge: threshold, threshold: {{max: 0.05}}, failure_limit: 0}}
"""


# -- the probe ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    sent: float  # time.time() before the request
    got: float  # time.time() when the answer (or the error) came back
    status: int  # 0: connection error
    who: str  # the answering candidate; "" for a 500 (no body field); the exception for errors


class Probe:
    """Threads sending GET / back to back, every answer timestamped (bounded in time and count)."""

    def __init__(self, url: str, threads: int = 2, seconds: float = 60.0) -> None:
        self.url = url
        self.threads = threads
        self.seconds = seconds
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._started = 0.0

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set() and len(self.answers) < PROBE_MAX:
                if time.monotonic() - self._started > self.seconds:
                    return
                sent = time.time()
                try:
                    resp = client.get(self.url)
                except httpx.HTTPError as exc:
                    self.answers.append(Answer(sent, time.time(), 0, type(exc).__name__))
                    continue
                got = time.time()
                who = ""
                if resp.status_code == 200:
                    try:
                        who = str(resp.json().get("candidate", ""))
                    except ValueError:
                        who = "?"
                self.answers.append(Answer(sent, got, resp.status_code, who))

    def start(self) -> Probe:
        self._started = time.monotonic()
        for _ in range(self.threads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for t in self._workers:
            t.join(10)
        return sorted(self.answers, key=lambda a: a.got)


def last_from(answers: list[Answer], candidate: str, count_500: bool) -> Answer | None:
    """The last answer given by ``candidate`` (a 500 counts as its own when ``count_500``)."""
    for a in reversed(answers):
        if a.who == candidate or (count_500 and a.status == 500):
            return a
    return None


# -- results --------------------------------------------------------------------------------------
@dataclass
class Tally:
    requests: int = 0
    proxy_failures: int = 0  # connection errors + 502/503/504
    bad_500: int = 0  # the bad version's own failures (not counted against the move)
    statuses: dict[str, int] = field(default_factory=dict)  # status or error name: count

    def add_load(self, r: loadgen.LoadResult) -> None:
        self.requests += r.total
        self.proxy_failures += sum(r.errors.values()) + sum(r.statuses[s] for s in PROXY_FAILURES)
        self.bad_500 += r.statuses[500]
        for key, n in [*r.statuses.items(), *r.errors.items()]:
            self.statuses[str(key)] = self.statuses.get(str(key), 0) + n

    def add_probe(self, answers: list[Answer]) -> None:
        self.requests += len(answers)
        for a in answers:
            key = str(a.status) if a.status else a.who
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if a.status == 0 or a.status in PROXY_FAILURES:
                self.proxy_failures += 1
            elif a.status == 500:
                self.bad_500 += 1


@dataclass
class Restore:
    candidate: str
    deployment: int
    started: float  # deploy issued (verdict) or abort CLI started (abort), time.time()
    decided: float  # the aborting record's `at`, as epoch seconds
    restored: float | None  # receive time of the last answer from the candidate
    finished: float  # the rolled_back record's `at`
    from_candidate: int  # answers the candidate gave during the phase
    after: int  # answers after the restore instant (none from the candidate, by construction)
    after_other: int  # ... of which not a 200 from the stable candidate (expected 0)
    after_s: float  # how long the probe kept looking after the restore instant
    gap_ms: float  # probe resolution: largest gap between answers in the 0.5 s around restore
    tally: Tally

    @property
    def restore_s(self) -> float:
        return math.nan if self.restored is None else self.restored - self.decided

    @property
    def from_start_s(self) -> float:
        return math.nan if self.restored is None else self.restored - self.started


@dataclass
class Moves:
    candidate: str
    deployment: int
    seconds: float
    weights: list[str]
    tally: Tally


@dataclass
class Run:
    verdict: Restore | None = None
    abort: Restore | None = None
    abort_api: Restore | None = None
    moves: Moves | None = None


# -- the environment ------------------------------------------------------------------------------
class Bench:
    def __init__(self, work: Path, interval: str, deadline: float) -> None:
        self.work = work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.interval = interval
        self.deadline = deadline
        self.server = ServerProcess(work / "data", env={"SHIPYARD_LEASE_SECONDS": "5"})
        self.repo: GitRepo | None = None
        self.api: httpx.Client | None = None
        self.stable = ""
        self.n = 0

    # plumbing
    def cli(self, *args: str) -> Any:
        done = self.server.cli(*args)
        if done.code != 0:
            raise RuntimeError(f"shipyard {' '.join(args)} failed: {done!r}")
        return done.json() if "--json" in args else done.out

    def get(self, path: str) -> Any:
        assert self.api is not None
        resp = self.api.get(path)
        resp.raise_for_status()
        return resp.json()

    def rollout(self) -> dict[str, Any]:
        return self.get(f"/api/v1/projects/{PROJECT}/environments/{ENV}/rollout")  # type: ignore[no-any-return]

    def explain(self, deployment: int) -> dict[str, Any]:
        return self.get(f"/api/v1/projects/{PROJECT}/deployments/{deployment}/rollout")  # type: ignore[no-any-return]

    def wait(self, deployment: int, phases: tuple[str, ...], poll: float = 0.1) -> dict[str, Any]:
        limit = min(time.monotonic() + PHASE_TIMEOUT_S, self.deadline + 30)
        while time.monotonic() < limit:
            r = self.rollout()
            if r["deployment_id"] == deployment and r["phase"] in phases:
                return r
            time.sleep(poll)
        raise TimeoutError(f"deployment {deployment} not {phases} in time: {self.rollout()}")

    # setup / teardown
    def start(self) -> None:
        self.server.start()
        self.api = httpx.Client(
            base_url=self.server.url,
            headers={"Authorization": f"Bearer {self.server.admin_token}"},
            timeout=30,
        )
        self.repo = GitRepo(self.work / "shop")
        self.repo.commit(
            "feat: shop service (#1)",
            {
                "shipyard.yaml": config(self.port, self.interval),
                "sample_service.py": Path(sample_service.__file__).read_text(),
                "sample.json": json.dumps({"version": "v1"}),
            },
        )
        self.cli("project", "add", str(self.repo.path))
        self.cli("release", "cut", PROJECT)
        first = self.cli("deploy", PROJECT, "1.0.0-rc.1", ENV, "--json")
        self.wait(first["id"], ("promoted",))
        self.stable = "1.0.0-rc.1"

    def stop(self) -> None:
        if self.api is not None:
            self.api.close()
        self.server.stop()
        env_dir = self.work / "data" / "environments" / PROJECT / ENV
        with contextlib.suppress(Exception):
            HaproxyRouter().stop(RouteRef(PROJECT, ENV, env_dir / "router", self.port))
        with contextlib.suppress(Exception):
            target = LocalTarget()
            target.stop_all(env_dir)
            target.close()

    def candidate(self, subject: str, knobs: dict[str, Any]) -> str:
        assert self.repo is not None
        self.n += 1
        sha = self.repo.commit(
            f"{subject} (#{self.n + 1})",
            {"sample.json": json.dumps({"version": f"v{self.n + 1}", **knobs})},
        )
        return str(self.cli("release", "pick", PROJECT, "1.0.0", sha, "--json")["name"])

    def deploy(self, name: str, policy: str) -> int:
        return int(self.cli("deploy", PROJECT, name, ENV, "--policy", policy, "--json")["id"])

    # the phases
    def _record_at(self, deployment: int, kind: str) -> float:
        for rec in self.explain(deployment)["records"]:
            if rec["kind"] == kind:
                at = datetime.fromisoformat(rec["at"])
                if at.tzinfo is None:
                    at = at.replace(tzinfo=timezone.utc)  # noqa: UP017
                return at.timestamp()
        raise RuntimeError(f"deployment {deployment}: no {kind!r} record")

    def _restore(
        self, name: str, deployment: int, started: float, load: loadgen.Load, probe: Probe
    ) -> Restore:
        self.wait(deployment, ("rolled_back",), poll=0.25)
        time.sleep(TAIL_S)
        answers = probe.stop()
        tally = Tally()
        tally.add_load(load.stop())
        tally.add_probe(answers)
        decided = self._record_at(deployment, "aborting")
        finished = self._record_at(deployment, "rolled_back")
        last = last_from(answers, name, count_500=True)
        restored = last.got if last else None
        pivot = restored if restored is not None else decided
        near = [a.got for a in answers if abs(a.got - pivot) < 0.25]
        gap = max((b - a for a, b in itertools.pairwise(near)), default=math.nan)
        after = [a for a in answers if a.got > pivot]
        return Restore(
            candidate=name,
            deployment=deployment,
            started=started,
            decided=decided,
            restored=restored,
            finished=finished,
            from_candidate=sum(1 for a in answers if a.who == name or a.status == 500),
            after=len(after),
            after_other=sum(1 for a in after if a.status != 200 or a.who != self.stable),
            after_s=answers[-1].got - pivot if answers else 0.0,
            gap_ms=gap * 1000,
            tally=tally,
        )

    def verdict_phase(self) -> Restore:
        bad = self.candidate("feat: risky", {"error_rate": 0.5})
        load, probe = self._traffic()
        try:
            started = time.time()
            deployment = self.deploy(bad, "failfast")
            return self._restore(bad, deployment, started, load, probe)
        finally:
            probe.stop()
            load.stop()

    def abort_phase(self, via: str) -> Restore:
        held = self.candidate("feat: held back", {})
        load, probe = self._traffic()
        try:
            deployment = self.deploy(held, "held")
            self.wait(deployment, ("paused",))
            limit = time.monotonic() + 10
            while not any(a.who == held for a in probe.answers[-200:]):
                if time.monotonic() > limit:
                    raise TimeoutError(f"{held} never answered at 50%")
                time.sleep(0.05)
            started = time.time()
            if via == "cli":
                self.cli("rollout", "abort", PROJECT, ENV, "--reason", "bench")
            else:
                assert self.api is not None
                path = f"/api/v1/projects/{PROJECT}/environments/{ENV}/rollout/abort"
                self.api.post(path, json={"reason": "bench"}).raise_for_status()
            return self._restore(held, deployment, started, load, probe)
        finally:
            probe.stop()
            load.stop()

    def moves_phase(self) -> Moves:
        good = self.candidate("fix: faster", {})
        load, probe = self._traffic()
        try:
            started = time.monotonic()
            deployment = self.deploy(good, "steps")
            self.wait(deployment, ("promoted",))
            seconds = time.monotonic() - started
            time.sleep(TAIL_S)
        finally:
            answers = probe.stop()
            result = load.stop()
        tally = Tally()
        tally.add_load(result)
        tally.add_probe(answers)
        weights = [
            r["message"]
            for r in self.explain(deployment)["records"]
            if r["kind"] in ("weight", "promoting")
        ]
        self.stable = good
        return Moves(good, deployment, seconds, weights, tally)

    def _traffic(self) -> tuple[loadgen.Load, Probe]:
        seconds = PHASE_TIMEOUT_S + TAIL_S + 5
        load = loadgen.Load(self.url, seconds=seconds, concurrency=2).start()
        return load, Probe(self.url, threads=2, seconds=seconds).start()


# -- report ---------------------------------------------------------------------------------------
def p90(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]


def _s(xs: list[float]) -> str:
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return f"{'-':>8} {'-':>8} {'-':>8}"
    return f"{statistics.median(xs):>8.3f} {p90(xs):>8.3f} {max(xs):>8.3f}"


def _ratio(xs: list[float]) -> str:
    xs = [x for x in xs if not math.isnan(x)]
    return f"{statistics.median(xs) / GOAL_RESTORE_S:.3f}x" if xs else "-"


def summary(runs: list[Run]) -> dict[str, Any]:
    verdicts = [r.verdict for r in runs if r.verdict]
    aborts = [r.abort for r in runs if r.abort]
    posts = [r.abort_api for r in runs if r.abort_api]
    moves = [r.moves for r in runs if r.moves]
    everything = [x.tally for x in verdicts + aborts + posts] + [m.tally for m in moves]
    return {
        "runs": len(runs),
        "verdict_to_stable_s": [v.restore_s for v in verdicts],
        "verdict_recorded_to_rolled_back_s": [v.finished - v.decided for v in verdicts],
        "deploy_to_verdict_s": [v.decided - v.started for v in verdicts],
        "abort_cli_to_stable_s": [a.from_start_s for a in aborts],
        "abort_cli_to_recorded_s": [a.decided - a.started for a in aborts],
        "abort_recorded_to_stable_s": [a.restore_s for a in aborts],
        "abort_api_to_stable_s": [a.from_start_s for a in posts],
        "abort_api_to_recorded_s": [a.decided - a.started for a in posts],
        "abort_api_recorded_to_stable_s": [a.restore_s for a in posts],
        "probe_gap_ms": [x.gap_ms for x in verdicts + aborts + posts],
        "moves_failed": [m.tally.proxy_failures for m in moves],
        "moves_requests": [m.tally.requests for m in moves],
        "all_failed": sum(t.proxy_failures for t in everything),
        "all_requests": sum(t.requests for t in everything),
        "bad_500": sum(t.bad_500 for t in everything),
        "answers_from_bad": sum(v.from_candidate for v in verdicts),
        "answers_after_restore": sum(x.after for x in verdicts + aborts + posts),
        "answers_after_restore_not_stable": sum(x.after_other for x in verdicts + aborts + posts),
    }


def report(runs: list[Run], s: dict[str, Any]) -> None:
    n = s["runs"]
    print()
    print(f"restore and weight-change safety, {n} runs (seconds: median, p90, max over runs)")
    head = f"{'metric':<44} {'median':>8} {'p90':>8} {'max':>8}   {'goal':>8}   {'ratio':>7}"
    print(head)
    print("-" * len(head))

    def row(label: str, xs: list[float], goal: bool = False) -> None:
        mark, ratio = ("< 1 s", _ratio(xs)) if goal else ("", "")
        print(f"{label:<44} {_s(xs)}   {mark:>8}   {ratio:>7}".rstrip())

    row("failing verdict -> 100% stable", s["verdict_to_stable_s"], goal=True)
    row("  (verdict recorded -> rolled_back recorded)", s["verdict_recorded_to_rolled_back_s"])
    row("  (deploy issued -> verdict recorded)", s["deploy_to_verdict_s"])
    row("`rollout abort` issued -> 100% stable", s["abort_cli_to_stable_s"], goal=True)
    row("  of which CLI issued -> abort recorded", s["abort_cli_to_recorded_s"])
    row("  of which abort recorded -> 100% stable", s["abort_recorded_to_stable_s"], goal=True)
    row("abort POSTed to the API -> 100% stable", s["abort_api_to_stable_s"], goal=True)
    row("  of which POST sent -> abort recorded", s["abort_api_to_recorded_s"])
    row("  of which abort recorded -> 100% stable", s["abort_api_recorded_to_stable_s"], goal=True)
    gaps = [g / 1000 for g in s["probe_gap_ms"]]
    row("  (probe resolution: max gap near restore)", gaps)
    mf = [float(x) for x in s["moves_failed"]]
    fails = (
        f"{statistics.median(mf):>8.0f} {p90(mf):>8.0f} {max(mf):>8.0f}"
        if mf
        else f"{'-':>8} {'-':>8} {'-':>8}"
    )
    met = "met" if mf and max(mf) == 0 else "missed" if mf else "-"
    print(f"{'failed requests, 10->25->50->100% moves':<44} {fails}   {'0':>8}   {met:>7}")
    total_moves = sum(s["moves_requests"])
    print(
        f"{'failed requests, all phases (every move)':<44} {s['all_failed']:>8} "
        f"{'':>8} {'':>8}   {'0':>8}   {'met' if s['all_failed'] == 0 else 'missed':>7}"
    )
    print()
    print(
        f"requests: {s['all_requests']:,} in all phases ({total_moves:,} during the weight moves); "
        f"bad version's own 500s (not counted): {s['bad_500']:,}; answers by the bad candidate "
        f"before restore: {s['answers_from_bad']:,}; answers after the restore instants: "
        f"{s['answers_after_restore']:,}, of which not from stable: "
        f"{s['answers_after_restore_not_stable']:,}"
    )


# -- main -----------------------------------------------------------------------------------------
def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--interval", default="0.5s", help="analysis interval of the failing canary")
    ap.add_argument("--budget", type=float, default=270.0, help="seconds; no new run after this")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs)")
    args = ap.parse_args()
    if shutil.which("haproxy") is None:
        raise SystemExit("haproxy is not on PATH")
    sys.setswitchinterval(0.001)  # the probe's timestamps wait less for the GIL
    signal.signal(signal.SIGTERM, _sigterm)
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-restore-"))
    bench = Bench(work, args.interval, deadline=began + args.budget)
    runs: list[Run] = []
    error = ""
    try:
        print(f"starting shipyard serve, HAProxy on 127.0.0.1:{bench.port}, in {work}", flush=True)
        bench.start()
        for i in range(max(1, min(args.runs, 50))):
            if time.monotonic() > bench.deadline:
                print(f"budget of {args.budget:.0f} s spent: stopping after {i} runs", flush=True)
                break
            run = Run()
            runs.append(run)
            run.verdict = bench.verdict_phase()
            run.abort = bench.abort_phase("cli")
            run.abort_api = bench.abort_phase("api")
            run.moves = bench.moves_phase()
            v, a, p, m = run.verdict, run.abort, run.abort_api, run.moves
            print(
                f"run {i + 1}: verdict->stable {v.restore_s * 1000:.0f} ms, "
                f"abort->stable {a.from_start_s * 1000:.0f} ms "
                f"(recorded->stable {a.restore_s * 1000:.0f} ms), "
                f"API abort->stable {p.from_start_s * 1000:.0f} ms "
                f"(recorded->stable {p.restore_s * 1000:.0f} ms), "
                f"moves {m.weights} failed {m.tally.proxy_failures}/{m.tally.requests}",
                flush=True,
            )
    except KeyboardInterrupt:
        error = "interrupted"
        print("interrupted: cleaning up", flush=True)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        print(f"error: {error}", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        bench.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    runs = [r for r in runs if r.verdict and r.abort and r.abort_api and r.moves]
    if not runs:
        raise SystemExit(f"no complete run ({error or 'nothing measured'})")
    s = summary(runs)
    report(runs, s)
    print(
        f"\n{time.monotonic() - began:.0f} s in all"
        + (f"; stopped early: {error}" if error else "")
    )
    if args.json:
        out = {
            "goal": {"restore_s": GOAL_RESTORE_S, "failed_requests": 0},
            "interval": args.interval,
            "summary": s,
            "runs": [asdict(r) for r in runs],
            "error": error,
        }
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    main()
