"""shipyard demo: the whole story on a fresh machine, against a real server, in under 3 minutes.

A face like every other command: it starts a real ``shipyard serve`` (SQLite, 127.0.0.1) and
drives it through the same API client as the CLI, as three people: the admin who sets up, Ada
who releases and deploys, and Grace who approves (separation of duties: Ada may not approve
what she cut and wrote). Every rule is the server's; the demo only asks and shows what happened.

Real parts only: a git repository made with git, builds run once by the server, instances
started by the local target, HAProxy moving production's traffic, and load sent to it so the
canary analysis has evidence. Ctrl-C at any moment stops all of it (exit 130) and leaves the
state on disk to look at.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from shipyard.cli.client import Client
from shipyard.cli.commands.rollouts import PHASE_STYLE, show_explained
from shipyard.cli.demo.processes import (
    DemoServer,
    free_port,
    leftovers,
    stop_environments,
    sweep,
)
from shipyard.cli.demo.repo import PROJECT, SampleRepo
from shipyard.cli.demo.traffic import Seen, Traffic
from shipyard.cli.errors import CliError
from shipyard.cli.render import console, line, short, table

EXIT_INTERRUPTED = 130  # the shell's code for "stopped by Ctrl-C"
DEPLOYER, APPROVER = "ada", "grace"
WAIT_S = 90.0  # the longest any one step may take before the demo gives up
# Users' requests per second during a canary: enough canary requests (~300 at 20% in a 10-second
# window) for the sequential judge to bound a zero-error canary within the demo check's
# negligible increase of 2.5 points (docs/demo.md).
CANARY_RATE = 150.0
RESUMES = 2  # inconclusive analyses the approver re-runs before the demo gives up


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: stop everything, then exit with ``code`` (a KeyboardInterrupt, so no
    ``except Exception`` on the way swallows it)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Cast:
    """The three people of the story, each with their own token."""

    admin: Client
    ada: Client
    grace: Client


def _ok(text: str) -> None:
    line(f"[green]✓[/] {text}")


def _title(n: int, text: str) -> None:
    line(f"\n[bold blue]{n}. {text}[/]")


def _until(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll ``probe`` until it returns something; the demo waits for conditions, never sleeps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.2)
    raise CliError(f"demo: gave up waiting for {what} after {timeout:.0f}s", "deployment_failed")


# -- set-up -----------------------------------------------------------------------------------
def _require_tools() -> None:
    for tool, package in (("haproxy", "haproxy"), ("git", "git")):
        if shutil.which(tool) is None:
            raise CliError(
                f"{tool} is not installed: run scripts/setup (or apt-get install {package})",
                "unavailable",
            )


def _prepare(data_dir: Path | None) -> Path:
    """A new directory for everything the demo makes; an existing one must be empty (the demo
    needs a first server start for its admin token, and owns every process working in it)."""
    if data_dir is None:
        return Path(tempfile.mkdtemp(prefix="shipyard-demo-")).resolve()
    root = data_dir.expanduser().resolve()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CliError(f"{root} is not an empty directory", "refused", hint="give a new --data-dir")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _cast(server: DemoServer) -> Cast:
    admin = Client(server.url, server.admin_token)

    def person(user: str, role: str) -> Client:
        token = admin.post("/api/v1/tokens", {"user": user, "role": role})["token"]
        _ok(f"token for [bold]{user}[/] ({role}) created by admin")
        return Client(server.url, token)

    return Cast(admin, person(DEPLOYER, "deployer"), person(APPROVER, "approver"))


# -- releasing --------------------------------------------------------------------------------
def _built(client: Client, candidate: dict[str, Any]) -> dict[str, Any]:
    """Wait for the candidate's one build, then show its artifacts' digests."""
    path = f"/api/v1/projects/{PROJECT}/candidates/{candidate['name']}"

    def done() -> dict[str, Any] | None:
        c: dict[str, Any] = client.get(path)
        return None if c["status"] == "building" else c

    c: dict[str, Any] = _until(f"the build of {candidate['name']}", done)
    if c["status"] != "built":
        raise CliError(f"build of {c['name']} failed: {c['reason']}", "build_failed")
    _ok(f"candidate [bold]{c['name']}[/] at {short(c['sha'])} built once")
    for a in c["artifacts"]:
        line(f"    {a['name']}  [dim]{a['digest']}[/]")
    return c


def _cut(cast: Cast) -> dict[str, Any]:
    r = cast.ada.post(f"/api/v1/projects/{PROJECT}/releases", {})
    _ok(
        f"{DEPLOYER} cut release [bold]{r['version']}[/] from {short(r['base_sha'])} on {r['branch']}"
    )
    return _built(cast.ada, r["candidates"][0])


def _pick(cast: Cast, version: str, sha: str) -> dict[str, Any]:
    c = cast.ada.post(f"/api/v1/projects/{PROJECT}/releases/{version}/picks", {"shas": [sha]})
    picks = ", ".join(f"{short(p['source_sha'])} → {short(p['new_sha'])}" for p in c["picks"])
    _ok(f"{DEPLOYER} picked {picks} onto release/{version}")
    return _built(cast.ada, c)


# -- deploying --------------------------------------------------------------------------------
def _finished(client: Client, deployment_id: int) -> dict[str, Any] | None:
    d: dict[str, Any] = client.get(f"/api/v1/deployments/{deployment_id}")
    return d if d["state"] in ("succeeded", "failed", "canceled", "rolled_back") else None


def _staged(cast: Cast, candidate: str) -> None:
    """Staging auto-promotes: the server deploys each new build there by itself."""

    def deployed() -> dict[str, Any] | None:
        ds = cast.ada.get(
            f"/api/v1/projects/{PROJECT}/deployments", params={"environment": "staging"}
        )
        mine = [d for d in ds if d["candidate"] == candidate]
        return _finished(cast.ada, mine[0]["id"]) if mine else None

    d = _until(f"{candidate} in staging", deployed)
    if d["state"] != "succeeded":
        raise CliError(f"{candidate} failed in staging: {d['outcome']}", "deployment_failed")
    _ok(f"staging runs {candidate} (deployed automatically by {d['requested_by']})")


def _approved(cast: Cast, candidate: str, *, show_refusal: bool) -> dict[str, Any]:
    """Ada asks for production; the gate waits for an approver; Grace approves."""
    d: dict[str, Any] = cast.ada.post(
        f"/api/v1/projects/{PROJECT}/deployments",
        {"candidate": candidate, "environment": "production"},
    )
    waiting = "; ".join(d["waiting_for"]) or d["state"]
    _ok(
        f"{DEPLOYER} asked for deployment {d['id']}: {candidate} → production, waiting for: {waiting}"
    )
    if show_refusal:
        try:
            cast.ada.post(f"/api/v1/deployments/{d['id']}/approve", {"comment": "self-approval"})
        except CliError as err:
            line(f"[red]✗[/] {DEPLOYER} may not approve it herself: [dim]{err.message}[/]")
        else:
            raise CliError(
                "the server let the deployer approve her own deployment", "deployment_failed"
            )
    cast.grace.post(f"/api/v1/deployments/{d['id']}/approve", {"comment": "demo: looks good"})
    _ok(f"approved by [bold]{_approver(cast, d['id'])}[/]: the deployment starts by itself")
    return d


def _approver(cast: Cast, deployment_id: int) -> str:
    """Who approved, as the audit log recorded it (not as the demo meant it)."""
    events = cast.admin.get("/api/v1/events", params={"project": PROJECT, "limit": 1000})
    users = [
        e["actor"]
        for e in events
        if e["kind"] == "deployment.approved" and e["subject"] == f"deployment {deployment_id}"
    ]
    if not users:
        raise CliError(f"no approval of deployment {deployment_id} in the audit log", "not_found")
    tokens = {t["user"]: t["role"] for t in cast.admin.get("/api/v1/tokens")}
    return ", ".join(f"{u} ({tokens.get(u, '?')})" for u in users)


def _rollout(client: Client, deployment_id: int) -> dict[str, Any] | None:
    try:
        r: dict[str, Any] = client.get(
            f"/api/v1/projects/{PROJECT}/deployments/{deployment_id}/rollout"
        )
    except CliError as err:
        if err.code == "not_found":
            return None  # the new version is still starting beside the old one
        raise
    return r


def _live_rollout(client: Client, deployment_id: int) -> dict[str, Any] | None:
    """The environment's rollout with the router's live counters, once it is this deployment's
    (the per-deployment view has the decisions, not the traffic)."""
    try:
        r: dict[str, Any] = client.get(
            f"/api/v1/projects/{PROJECT}/environments/production/rollout"
        )
    except CliError as err:
        if err.code == "not_found":
            return None
        raise
    return r if r["deployment_id"] == deployment_id else None


def _view(r: dict[str, Any] | None, versions: list[dict[str, Any]], seen: Seen) -> Group:
    """One frame of the live canary: where the rollout is, and the traffic each version got."""
    t = Table(title_justify="left", header_style="bold")
    if r is None:
        t.title = "production: starting the new version beside the old one ..."
    else:
        total = len(r["steps"])
        step = r["steps"][min(r["step"], total - 1)]["description"] if total else "-"
        phase = r["phase"]
        t.title = (
            f"production canary {r['canary']} vs {r['stable']}: "
            f"[{PHASE_STYLE.get(phase, 'white')}]{phase}[/], "
            f"step {min(r['step'] + 1, total)}/{total} ({step}), weight {r['weight']:g}%"
        )
    for c in ("version", "role", "router: requests", "5xx", "error ratio", "users: ok", "5xx"):
        t.add_column(c)
    for v in versions:
        ratio = "" if v["error_ratio"] is None else f"{100 * v['error_ratio']:.1f}%"
        name = v["candidate"]
        t.add_row(
            name,
            v["role"],
            str(v["requests"]),
            str(v["errors_5xx"]),
            ratio,
            str(seen.ok[name]),
            str(seen.failed[name]),
        )
    last = r["records"][-1] if r and r["records"] else None
    decision = f"last decision: {last['kind']}: {last['message']}" if last else ""
    return Group(t, Text(decision, style="dim"))


def _resumed(cast: Cast, r: dict[str, Any] | None, resumes: list[str]) -> bool:
    """An analysis that ended without enough evidence either way pauses for a human (an engine
    rule): the approver has it measured again, at most ``RESUMES`` times."""
    if r is None or r["phase"] != "paused" or len(resumes) >= RESUMES:
        return False
    if not r["pause_reason"].startswith("analysis inconclusive"):
        return False
    cast.grace.post(f"/api/v1/projects/{PROJECT}/environments/production/rollout/resume", {})
    resumes.append(r["pause_reason"])
    return True


def _watch(cast: Cast, deployment_id: int, traffic: Traffic) -> dict[str, Any]:
    """Live view until the rollout has ended and the deployment has its outcome."""
    seen_versions: dict[str, dict[str, Any]] = {}  # kept: an ended rollout shows one version
    deadline = time.monotonic() + WAIT_S
    done: dict[str, Any] | None = None
    resumes: list[str] = []
    with Live(_view(None, [], Seen()), console=console, refresh_per_second=4) as live:
        while done is None and time.monotonic() < deadline:
            r = _live_rollout(cast.ada, deployment_id)
            seen_versions |= {v["candidate"]: v for v in (r or {}).get("versions", [])}
            live.update(_view(r, list(seen_versions.values()), traffic.seen()))
            if r and r["phase"] in ("promoted", "rolled_back"):
                done = _finished(cast.ada, deployment_id)
            if done is None and not _resumed(cast, r, resumes):
                time.sleep(0.3)
    if not console.is_terminal:
        console.line()  # Live ends its last frame with a newline on terminals only
    for why in resumes:
        line(f"[yellow]‖[/] {why}: {APPROVER} had it measured again (rollout resume)")
    if done is None:
        raise CliError(f"deployment {deployment_id} did not finish in time", "deployment_failed")
    return done


def _first_release(cast: Cast, candidate: str) -> None:
    """A first version in production has nothing to be compared with: it takes 100% at once."""
    _staged(cast, candidate)
    d = _approved(cast, candidate, show_refusal=True)
    done = _until(f"deployment {d['id']}", lambda: _finished(cast.ada, d["id"]))
    if done["state"] != "succeeded":
        raise CliError(f"{candidate} failed in production: {done['outcome']}", "deployment_failed")
    r = _rollout(cast.ada, d["id"])
    why = r["records"][0]["message"] if r and r["records"] else "first version"
    _ok(f"{candidate} took 100% of production at once, no canary (engine: {why})")


def _to_production(cast: Cast, port: int, candidate: str) -> dict[str, Any]:
    """Staging, approval, then the canary under load from users."""
    _staged(cast, candidate)
    with Traffic(port, rate=CANARY_RATE, seconds=WAIT_S) as traffic:
        d = _approved(cast, candidate, show_refusal=False)
        done = _watch(cast, d["id"], traffic)
    seen = traffic.seen()
    line(
        f"  users sent {seen.total} requests: "
        + ", ".join(f"{v} {n} ok" for v, n in sorted(seen.ok.items()))
        + "".join(f", {v} {n} 5xx" for v, n in sorted(seen.failed.items()))
        + f", {seen.proxy_failed} dropped by the proxy"
    )
    return done


def _serving(port: int) -> str:
    """Ask production who answers, as a user would."""
    with Traffic(port, requests=40, seconds=10) as traffic:
        _until("answers from production", lambda: True if traffic.seen().total >= 40 else None)
    seen = traffic.seen()
    versions = sorted(set(seen.ok) | set(seen.failed))
    return (
        ", ".join(f"{v} ({seen.ok[v]} ok, {seen.failed[v]} 5xx of {seen.total})" for v in versions)
        or "nobody"
    )


# -- the story --------------------------------------------------------------------------------
def _verdict(step: int, check: dict[str, Any]) -> str:
    """One check's verdict with the sequential judge's numbers: the canary's error-rate ratio to
    stable and its confidence sequence (the harm a pass has ruled out), or, when the pass rests on
    the negligible increase (no errors: no ratio to speak of), both versions' error ratios."""
    ev = check.get("evidence", {})
    low, high = ev.get("effect_interval") or [None, None]
    ratio = ev.get("error-rate ratio")
    canary, stable = check.get("value"), check.get("baseline")
    if ev.get("pass_criterion") == "negligible_increase" and None not in (canary, stable):
        effect = f", error ratio {canary:.2%} against stable {stable:.2%}"
    else:
        effect = "" if ratio is None else f", error-rate ratio to stable {ratio:.2f}"
        if low is not None and high is not None:
            effect += f" (between {low:.2f} and {high:.2f})"
    return (
        f"step {step}: {check['name']} {check['verdict']} by the {ev.get('judge', '?')} judge, "
        f"{ev.get('canary_requests', '?')} canary vs {ev.get('baseline_requests', '?')} stable "
        f"requests{effect}: {check['reason']}"
    )


def _verdicts(r: dict[str, Any]) -> list[str]:
    """Each analysis decision of a rollout in one line: the judge's verdict against stable."""
    return [
        _verdict(rec["step"] + 1, check)
        for rec in r["records"]
        if rec["kind"] in ("analysis", "aborting")
        for check in rec["evidence"].get("checks", [])
    ]


@dataclass
class Story:
    """The eight steps, in order; each prints what happened as the server reports it."""

    root: Path
    server: DemoServer
    router_port: int
    repo: SampleRepo

    def run(self) -> None:
        started = time.monotonic()
        _title(1, "A sample repository with a small web service")
        for sha in self.repo.create(self.router_port):
            self._commit(sha)
        _ok(
            f"shipyard.yaml: staging (auto), production (1 approval, HAProxy on 127.0.0.1:{self.router_port}, canary)"
        )

        _title(2, "A Shipyard server on SQLite")
        self.server.start()
        _ok(f"server on {self.server.url} (data in {self.server.state}, log {self.server.log})")
        line(f"  dashboard: [bold]{self.server.url}/ui[/]  log in with the admin token:")
        line(f"  {self.server.admin_token}")
        cast = _cast(self.server)

        _title(3, "Release 1.0.0: cut from main, built once")
        p = cast.admin.post("/api/v1/projects", {"source": str(self.repo.path), "name": None})
        _ok(f"project [bold]{p['name']}[/] added (mainline {p['mainline']}, {p['source']})")
        rc1 = _cut(cast)

        _title(4, "1.0.0-rc.1 through staging to production")
        _first_release(cast, rc1["name"])
        _ok(f"production serves {_serving(self.router_port)}")

        self._feature_release(cast)
        self._bad_release(cast)
        self._fix(cast)
        self._summary(cast, time.monotonic() - started)

    def _commit(self, sha: str, note: str = "") -> None:
        subject = self.repo.git("log", "-1", "--format=%s", sha)
        _ok(
            f"commit {short(sha)} on main by {self.repo.git('log', '-1', '--format=%an', sha)}: {subject}{note}"
        )

    def _promoted(self, cast: Cast, candidate: str) -> None:
        """Through staging and a canary that must reach 100%, with the judge's verdicts."""
        d = _to_production(cast, self.router_port, candidate)
        r = _rollout(cast.ada, d["id"])
        if d["state"] != "succeeded" or r is None or r["phase"] != "promoted":
            raise CliError(
                f"{candidate} did not reach production: {d['outcome']}", "deployment_failed"
            )
        for verdict in _verdicts(r):
            line(f"  {verdict}")
        _ok(f"{candidate} promoted to 100% of production")
        _ok(f"production serves {_serving(self.router_port)}")

    def _feature_release(self, cast: Cast) -> None:
        _title(5, "Release 1.1.0, a new feature: a healthy canary, step by step to 100%")
        self._commit(self.repo.commit_feature())
        rc = _cut(cast)
        self._promoted(cast, rc["name"])

    def _bad_release(self, cast: Cast) -> None:
        _title(6, "Release 1.2.0 with a bug: its canary is rolled back by itself")
        self._commit(self.repo.commit_bug(), "  [red](its new code fails 30% of the answers)[/]")
        rc = _cut(cast)
        d = _to_production(cast, self.router_port, rc["name"])
        r = _rollout(cast.ada, d["id"])
        if r is None or r["phase"] != "rolled_back":
            raise CliError(
                f"the buggy canary was not rolled back ({d['state']})", "deployment_failed"
            )
        line(f"[magenta]↩[/] rolled back automatically: {r['reason']}")
        line(f"  the evidence ([bold]shipyard rollout explain {PROJECT} {d['id']}[/]):")
        show_explained(r)
        _ok(f"production serves {_serving(self.router_port)}")

    def _fix(self, cast: Cast) -> None:
        _title(7, "The fix: picked onto release/1.2.0, which mints 1.2.0-rc.2")
        fix = self.repo.commit_fix()
        self._commit(fix)
        rc2 = _pick(cast, "1.2.0", fix)
        self._promoted(cast, rc2["name"])

    def _summary(self, cast: Cast, seconds: float) -> None:
        _title(8, f"Done in {seconds:.0f}s")
        rows = cast.ada.get(f"/api/v1/projects/{PROJECT}/status")
        table(
            "what runs where",
            ["environment", "candidate", "instances"],
            [
                [r["environment"], r["candidate"] or "-", ", ".join(_addresses(r["instances"]))]
                for r in rows
            ],
        )
        ds = cast.ada.get(
            f"/api/v1/projects/{PROJECT}/deployments", params={"environment": "production"}
        )
        table(
            "production deployments",
            ["#", "from → to", "asked by", "approved by", "result"],
            [
                [
                    d["id"],
                    f"{d['from_candidate'] or '-'} → {d['candidate']}",
                    d["requested_by"],
                    _approver(cast, d["id"]),
                    d["state"] + (f": {d['outcome']}" if d["state"] != "succeeded" else ""),
                ]
                for d in reversed(ds)
            ],
        )
        line(f"  production: http://127.0.0.1:{self.router_port}/ (HAProxy)")
        line(f"  dashboard:  [bold]{self.server.url}/ui[/] (admin token above)")
        line(f"  state:      {self.root} (repository {self.repo.path.name}/, server log)")


def _addresses(instances: list[dict[str, Any]]) -> list[str]:
    return [f"{i['address']} {'ok' if i['healthy'] else 'down'}" for i in instances]


# -- stopping ---------------------------------------------------------------------------------
def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(EXIT_INTERRUPTED if signum == signal.SIGINT else 128 + signum)


def _stop_all(story: Story) -> None:
    """Traffic has stopped with its block; now the server, then what it left running."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    line("\n[dim]stopping the server, HAProxy and the instances ...[/]")
    story.server.stop()
    routers = {"staging": None, "production": story.router_port}
    stop_environments(story.server.state, PROJECT, routers)
    strays = sweep(story.root)
    for pid, cmd in strays.items():
        line(f"  [dim]stopped a stray process {pid}: {cmd[:100]}[/]")
    left = leftovers(story.root)
    if left:
        line(f"[red]✗[/] still running in {story.root}: pids {sorted(left)}")
    else:
        _ok(f"nothing left running; the state stays in {story.root}")


def _wait_for_ctrl_c(story: Story) -> None:
    line(
        f"\n[bold]--keep[/]: the server stays up on {story.server.url}/ui; Ctrl-C stops everything"
    )
    while True:
        signal.pause()


def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="a new or empty directory for everything (default: a temp dir)"),
    ] = None,
    port: Annotated[int | None, typer.Option(help="server port (default: a free one)")] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="leave the server up to explore the dashboard")
    ] = False,
) -> None:
    """Show the whole story: cut, build once, staging, approval, a healthy canary, a canary
    rolled back, a pick, a promotion."""
    _require_tools()
    root = _prepare(data_dir)
    server = DemoServer(root / "shipyard", port or free_port(), root / "server.log")
    story = Story(root, server, free_port(), SampleRepo(root / PROJECT))
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    code, finished = 0, False
    try:
        story.run()
        finished = True
        if keep:
            _wait_for_ctrl_c(story)
    except Interrupted as stop:
        if not finished:  # with --keep, Ctrl-C after the story is the expected way out
            code = stop.code
            line(f"\n[yellow]interrupted[/] (exit {code})")
    finally:
        _stop_all(story)
    if code:
        raise typer.Exit(code)
