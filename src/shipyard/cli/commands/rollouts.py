"""shipyard rollout status | promote | pause | resume | abort | retry | explain"""

from __future__ import annotations

import functools
import json
import time
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from shipyard.cli import outcome
from shipyard.cli.client import Client
from shipyard.cli.errors import CliError
from shipyard.cli.render import JsonOpt, console, emit_json, line, when

app = typer.Typer(help="Watch and steer progressive rollouts.", no_args_is_help=True)

PHASE_STYLE = {
    "progressing": "yellow",
    "paused": "cyan",
    "promoting": "green",
    "aborting": "red",
    "promoted": "green",
    "rolled_back": "magenta",
}


def _path(project: str, environment: str) -> str:
    return f"/api/v1/projects/{project}/environments/{environment}/rollout"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}%"


def _ms(x: float | None) -> str:
    return "" if x is None else f"{x:.0f} ms"


def _header(r: dict[str, Any]) -> Text:
    phase = r["phase"]
    text = Text.from_markup(
        f"[bold]{r['project']}/{r['environment']}[/]: {r['canary']}"
        + (f" replacing {r['stable']}" if r["stable"] else "")
        + f" — policy [bold]{r['policy']}[/] ({r['strategy']}) — "
        f"[{PHASE_STYLE.get(phase, 'white')}]{phase}[/]"
    )
    total = len(r["steps"])
    if r.get("flag"):
        text.append(
            f"\nstep {min(r['step'] + 1, total)}/{total}, "
            f"flag {r['flag']} at {r['flag_percent']:g}% of users"
        )
    else:
        text.append(f"\nstep {min(r['step'] + 1, total)}/{total}, weight {r['weight']:g}%")
    if r["segment"]:
        text.append(f", segment: {r['segment']}")
    if r["mirror"]:
        text.append(f", mirroring {r['mirror']:g}%")
    if r["pause_reason"]:
        text.append(f"\npaused: {r['pause_reason']}", style="cyan")
    if r.get("awaiting"):
        text.append(f"\nwaiting for: shipyard {r['awaiting']}", style="cyan")
    if r["reason"]:
        text.append(f"\n{r['reason']}")
    for e in r.get("errors", []):
        text.append(
            f"\nerror ({e['source']}, {e['count']}/{e['limit']} in a row since "
            f"{when(e['first_seen'])}, last {when(e['last_seen'])}): {e['error']}",
            style="red",
        )
    if r["last_error"] and not r.get("errors"):
        text.append(f"\nlast error: {r['last_error']}", style="red")
    for item in r.get("not_done", []):
        text.append(f"\nnot done: {item}", style="red")
    if r["url"]:
        text.append(f"\nserving at {r['url']}", style="dim")
    text.append(_routing(r))
    return text


def _routing(r: dict[str, Any]) -> Text:
    """What the router says it serves (read back from it), beside what the rollout wants."""
    live = r.get("routing")
    if live is None:
        why = r.get("routing_error")
        return Text(f"\nrouter: cannot tell ({why})" if why else "", style="red")
    if live["canary"] is None:
        said = f"100% {live['stable']}"
    else:
        said = f"{live['stable']} {100 - live['canary_weight']:g}% / {live['canary']} "
        said += f"{live['canary_weight']:g}%"
    if live["segment"]:
        said += f", segment {live['segment']} to {live['canary']}"
    if live["mirror_percent"]:
        said += f", mirroring {live['mirror_percent']:g}%"
    return Text(f"\nrouter reads back: {said}", style="dim")


def _steps(r: dict[str, Any]) -> Table:
    t = Table(title="steps", title_justify="left", header_style="bold", expand=False)
    t.add_column("#")
    t.add_column("step")
    t.add_column("")
    marks = {"done": "[green]✓[/]", "current": "[yellow]▶[/]", "next": ""}
    for s in r["steps"]:
        t.add_row(str(s["index"] + 1), s["description"], marks[s["state"]])
    return t


def _versions(r: dict[str, Any]) -> Table:
    title = (
        "cohorts (as the app reported)" if r.get("flag") else "traffic (since the router started)"
    )
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in ("version", "role", "requests", "5xx", "error ratio", "avg", "p50", "p95", "p99"):
        t.add_column(c)
    for v in r["versions"]:
        lat = v["latency_ms"]
        t.add_row(
            v["candidate"],
            v["role"],
            str(v["requests"]),
            str(v["errors_5xx"]),
            _pct(v["error_ratio"]),
            _ms(v["latency_ms_avg"]),
            _ms(lat.get("p50")),
            _ms(lat.get("p95")),
            _ms(lat.get("p99")),
        )
    return t


def _checks(r: dict[str, Any]) -> Table | None:
    if not r["checks"]:
        return None
    t = Table(title="analysis", title_justify="left", header_style="bold")
    for c in ("check", "verdict", "canary", "stable", "failures", "why"):
        t.add_column(c, overflow="fold")
    for c in r["checks"]:
        verdict = c["verdict"] + (" (dry run)" if c["dry_run"] else "")
        t.add_row(
            c["name"],
            verdict,
            "" if c["value"] is None else f"{c['value']:.4g}",
            "" if c["baseline"] is None else f"{c['baseline']:.4g}",
            f"{c['failures']}/{c['failure_limit']}",
            c["reason"],
        )
    return t


def _records(records: list[dict[str, Any]], title: str = "decisions") -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in ("when", "step", "decision", "by", "what"):
        t.add_column(c, overflow="fold")
    for rec in records:
        t.add_row(when(rec["at"]), str(rec["step"] + 1), rec["kind"], rec["actor"], rec["message"])
    return t


def _view(r: dict[str, Any]) -> Group:
    parts: list[Any] = [Panel(_header(r), expand=False), _steps(r)]
    if r["versions"]:
        parts.append(_versions(r))
    checks = _checks(r)
    if checks is not None:
        parts.append(checks)
    parts.append(_records(r["records"], "last decisions"))
    return Group(*parts)


def status(
    project: str,
    environment: str,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="refresh until it ends; exit 0 promoted, 10 rolled back, 9 failed, 7 integrity",
        ),
    ] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 1.0,
    timeout: Annotated[
        float | None,
        typer.Option(help="with --watch: exit 11 if it has not ended after this many seconds"),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """The environment's rollout: step, weights, traffic per version, checks, decisions."""
    client = Client()
    r = client.get(_path(project, environment))
    if not watch:
        if json_:
            return emit_json(r)
        console.print(_view(r))
        return None
    deployment = client.get(f"/api/v1/deployments/{r['deployment_id']}")
    follow = functools.partial(
        outcome.wait,
        client,
        deployment,
        timeout=timeout,
        through_humans=True,
        interval=interval,
        rollout_path=_path(project, environment),
    )
    if json_:
        try:
            follow()
        finally:
            emit_json(client.get(_path(project, environment)))
        return None
    with Live(_view(r), console=console, refresh_per_second=4) as live:

        def show(p: outcome.Progress) -> None:
            if p.rollout is not None:
                live.update(_view(p.rollout))

        follow(on_poll=show)
    return None


def _act(project: str, environment: str, action: str, body: dict[str, Any], json_: bool) -> None:
    r = Client().post(f"{_path(project, environment)}/{action}", body)
    if json_:
        return emit_json(r)
    line(str(_header(r)))
    if r["records"]:
        last = r["records"][-1]
        line(f"[bold]{last['kind']}[/] by {last['actor']}: {last['message']}")
    return None


def promote(
    project: str,
    environment: str,
    full: Annotated[bool, typer.Option("--full", help="skip every remaining step")] = False,
    json_: JsonOpt = False,
) -> None:
    """Go past the current step (a pause, an approval, an inconclusive analysis)."""
    _act(project, environment, "promote", {"full": full}, json_)


def pause(project: str, environment: str, json_: JsonOpt = False) -> None:
    """Hold the rollout at its current step and weight."""
    _act(project, environment, "pause", {}, json_)


def resume(project: str, environment: str, json_: JsonOpt = False) -> None:
    """Continue a paused rollout (an inconclusive analysis runs again)."""
    _act(project, environment, "resume", {}, json_)


def abort(
    project: str,
    environment: str,
    reason: Annotated[str, typer.Option(help="why (recorded with the decision)")] = "",
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="wait until the abort has ended")
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait at most")] = 300.0,
    json_: JsonOpt = False,
) -> None:
    """Send 100% of traffic back to the stable version and stop the new one.

    With ``--wait`` it exits non-zero when the abort could not do all of it (saying what)."""
    if not wait:
        return _act(project, environment, "abort", {"reason": reason}, json_)
    client = Client()
    r = client.post(f"{_path(project, environment)}/abort", {"reason": reason})
    deadline = time.monotonic() + timeout
    while r["phase"] == "aborting" and time.monotonic() < deadline:
        time.sleep(0.3)
        r = client.get(_path(project, environment))
    if json_:
        emit_json(r)
    else:
        line(str(_header(r)))
    if r["phase"] == "aborting":
        raise CliError(
            f"the abort of {r['canary']} has not ended after {timeout:g}s"
            + (f": {r['last_error']}" if r["last_error"] else ""),
            "timeout",
            hint=f"see `shipyard rollout status {project} {environment}`",
        )
    if r["not_done"]:
        raise CliError(
            f"rolled back {r['canary']} incompletely: " + "; ".join(r["not_done"]),
            "deployment_failed",
        )
    return None


def retry(
    project: str,
    environment: str,
    reason: Annotated[str, typer.Option(help="why (recorded with the deployment)")] = "",
    json_: JsonOpt = False,
) -> None:
    """Run a rolled-back rollout again from its first step (a new deployment of its candidate)."""
    d = Client().post(f"{_path(project, environment)}/retry", {"reason": reason})
    if json_:
        return emit_json(d)
    line(
        f"deployment [bold]{d['id']}[/]: {d['candidate']} → {d['environment']} again, "
        f"{d['state']}; watch it with [bold]shipyard rollout status {project} {environment} "
        "--watch[/]"
    )
    return None


def explain(project: str, deployment: int, json_: JsonOpt = False) -> None:
    """Every decision of a deployment's rollout, with its evidence."""
    r = Client().get(f"/api/v1/projects/{project}/deployments/{deployment}/rollout")
    if json_:
        return emit_json(r)
    show_explained(r)
    return None


def show_explained(r: dict[str, Any]) -> None:
    """A rollout and each of its decisions with the evidence (also what `shipyard demo` shows)."""
    console.print(Panel(_header(r), expand=False))
    for rec in r["records"]:
        line(
            f"[dim]{when(rec['at'])}[/] step {rec['step'] + 1} [bold]{rec['kind']}[/] "
            f"by {rec['actor']}: {rec['message']}"
        )
        for check in rec["evidence"].get("checks", []):
            ev = check.get("evidence", {})
            line(
                f"    {check['name']}: [bold]{check['verdict']}[/] — {check['reason']}"
                + (" (dry run)" if check.get("dry_run") else "")
            )
            if ev:
                line(f"      [dim]{json.dumps(ev, sort_keys=True, default=str)}[/]")
        rest = {k: v for k, v in rec["evidence"].items() if k != "checks"}
        if rest:
            line(f"    [dim]{json.dumps(rest, sort_keys=True, default=str)}[/]")


for _name in ("status", "promote", "pause", "resume", "abort", "retry", "explain"):
    app.command(_name)(globals()[_name])
