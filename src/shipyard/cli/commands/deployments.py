"""shipyard deploy | approve | reject | rollback | veto | status | history | diff | deployment"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli import outcome
from shipyard.cli.client import Client
from shipyard.cli.render import JsonOpt, emit_json, line, short, table, when

STATE_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "awaiting_approval": "cyan",
    "pending": "cyan",
    "canceled": "dim",
    "rolled_back": "magenta",
}


def _state(text: str) -> str:
    return f"[{STATE_STYLE.get(text, 'white')}]{text}[/]"


def _summary(d: dict[str, Any]) -> str:
    frm = f" (replacing {d['from_candidate']})" if d["from_candidate"] else ""
    text = (
        f"deployment [bold]{d['id']}[/]: {d['candidate']} → {d['environment']}{frm}, "
        f"{d['mode']}, {_state(d['state'])}"
    )
    if d["waiting_for"]:
        text += "\n  waiting for: " + "; ".join(d["waiting_for"])
    if d["outcome"]:
        text += f"\n  {d['outcome']}"
    return text


TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        help="with --wait: wait through approvals and pauses for at most this many seconds, "
        "then exit 11 naming what it waits for"
    ),
]


def _wait(client: Client, d: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """Until its outcome (exit 0, 10, 9 or 7), or until it waits on a person (see cli/outcome)."""
    return outcome.wait(client, d, timeout=timeout).deployment


def deploy(
    project: str,
    candidate: str,
    environment: str,
    override_freeze: Annotated[
        bool, typer.Option(help="deploy during a freeze (needs --reason and a second approver)")
    ] = False,
    reason: Annotated[str, typer.Option(help="why (recorded in the audit log)")] = "",
    policy: Annotated[
        str | None,
        typer.Option(help="release policy from shipyard.yaml instead of the environment's"),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="wait for the outcome, its rollout's included (exit 0 promoted, 10 rolled back, "
            "9 failed, 7 integrity); without --timeout it returns when a person must act",
        ),
    ] = True,
    timeout: TimeoutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Deploy a built candidate into an environment (gates are checked now)."""
    client = Client()
    d = client.post(
        f"/api/v1/projects/{project}/deployments",
        {
            "candidate": candidate,
            "environment": environment,
            "override_freeze": override_freeze,
            "reason": reason,
            "policy": policy,
        },
    )
    if wait:
        d = _wait(client, d, timeout)
    if json_:
        return emit_json(d)
    line(_summary(d))
    _plan(d)
    if d["state"] == "running" and wait:
        line(
            f"  its rollout waits for a person: see [bold]shipyard rollout status {project} "
            f"{environment}[/]"
        )


def _decide(deployment: int, verb: str, comment: str, json_: bool) -> None:
    d = Client().post(f"/api/v1/deployments/{deployment}/{verb}", {"comment": comment})
    if json_:
        return emit_json(d)
    line(_summary(d))


def approve(
    deployment: int,
    comment: Annotated[str, typer.Option(help="recorded with the approval")] = "",
    json_: JsonOpt = False,
) -> None:
    """Approve a waiting deployment (it starts by itself once enough approvals are in)."""
    _decide(deployment, "approve", comment, json_)


def reject(
    deployment: int,
    comment: Annotated[str, typer.Option(help="why")] = "",
    json_: JsonOpt = False,
) -> None:
    """Reject a waiting deployment."""
    _decide(deployment, "reject", comment, json_)


def rollback(
    project: str,
    environment: str,
    reason: Annotated[str, typer.Option(help="why (recorded)")] = "",
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="CANDIDATE", help="an earlier candidate that succeeded there"),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait")] = True,
    timeout: TimeoutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Redeploy the previous good candidate in one step (cancels what is in flight; never rebuilds)."""
    client = Client()
    d = client.post(
        f"/api/v1/projects/{project}/rollbacks",
        {"environment": environment, "reason": reason, "to": to},
    )
    if wait:
        d = _wait(client, d, timeout)
    if json_:
        return emit_json(d)
    line(_summary(d) + (f"\n  {d['reason']}" if d["reason"] else ""))
    _plan(d)


def _plan(d: dict[str, Any]) -> None:
    """The ``plan:`` lines of its log: what the deployment decided to do, and why."""
    for said in (d.get("log") or "").splitlines():
        if said.startswith("plan: "):
            line(f"  {said}")


def veto(
    project: str,
    candidate: str,
    reason: Annotated[str, typer.Option(help="why it is bad")] = "",
    json_: JsonOpt = False,
) -> None:
    """Mark a candidate bad: never deployed, promoted or rolled back to again."""
    Client().post(f"/api/v1/projects/{project}/candidates/{candidate}/veto", {"reason": reason})
    if json_:
        return emit_json({"vetoed": candidate})
    line(f"[red]✗[/] {candidate} vetoed")


def status(project: str, json_: JsonOpt = False) -> None:
    """Which candidate runs in which environment, since when, by whom, and what is pending."""
    rows = Client().get(f"/api/v1/projects/{project}/status")
    if json_:
        return emit_json(rows)
    table(
        f"{project}: environments",
        ["environment", "running", "since", "by", "instances", "pending", "frozen"],
        [
            [
                r["environment"],
                _running(r),
                when(r["since"]),
                r["by"] or "",
                "\n".join(
                    [r["summary"]]
                    + [
                        f"{i['address']} {i['candidate']} {'ok' if i['healthy'] else 'down'}"
                        for i in r["instances"]
                    ]
                ),
                "\n".join(
                    f"#{d['id']} {d['candidate']} {d['state']}"
                    + (f" ({'; '.join(d['waiting_for'])})" if d["waiting_for"] else "")
                    for d in r["pending"]
                ),
                f"until {when(r['frozen_until'])}" if r["frozen_until"] else "",
            ]
            for r in rows
        ],
    )


def _running(r: dict[str, Any]) -> str:
    """The candidate that answers, and what a user must not miss about it."""
    notes = []
    if r["identity"] == "unverified":
        notes.append("unverified: the target cannot tell what runs")
    if r["identity"] and r["recorded"] != r["candidate"]:
        notes.append(f"records say {r['recorded']}" if r["recorded"] else "no deployment recorded")
    if r["others"]:
        notes.append("also running " + ", ".join(r["others"]))
    for name, veto in r["vetoed"].items():
        why = f": {veto['reason']}" if veto["reason"] else ""
        notes.append(f"[red]{name} is VETOED[/] (by {veto['by']} {when(veto['at'])}{why})")
    return "\n".join([r["candidate"] or "-", *notes])


def history(
    project: str,
    environment: Annotated[str | None, typer.Argument()] = None,
    json_: JsonOpt = False,
) -> None:
    """Deployments with mode, from → to, actor, duration and result (newest first)."""
    path = f"/api/v1/projects/{project}/deployments"
    ds = Client().get(path, params={"environment": environment} if environment else None)
    if json_:
        return emit_json(ds)
    table(
        f"{project} deployments" + (f" in {environment}" if environment else ""),
        ["#", "env", "mode", "from → to", "by", "requested", "duration", "result"],
        [
            [
                d["id"],
                d["environment"],
                d["mode"],
                f"{d['from_candidate'] or '-'} → {d['candidate']}",
                d["requested_by"],
                when(d["requested_at"]),
                f"{d['duration_s']:.1f}s" if d["duration_s"] is not None else "",
                _state(d["state"]) + (f" {d['outcome']}" if d["outcome"] else ""),
            ]
            for d in ds
        ],
    )


def diff(project: str, environment: str, candidate: str, json_: JsonOpt = False) -> None:
    """The changelog promoting CANDIDATE would bring into ENVIRONMENT, from what runs there now."""
    r = Client().get(f"/api/v1/projects/{project}/environments/{environment}/diff/{candidate}")
    if json_:
        return emit_json(r)
    title = f"{environment}: {r['running'] or 'nothing'} → {candidate}"
    table(
        title,
        ["sha", "type", "PR", "subject", "author"],
        [
            [
                short(e["sha"]),
                e["type"] or "",
                f"#{e['pr']}" if e["pr"] else "",
                e["subject"],
                e["author"],
            ]
            for e in r["changelog"]
        ],
    )


def show(deployment: int, json_: JsonOpt = False) -> None:
    """One deployment with its log."""
    d = Client().get(f"/api/v1/deployments/{deployment}")
    if json_:
        return emit_json(d)
    line(_summary(d))
    if d.get("log"):
        typer.echo(d["log"])
