"""shipyard release cut | pick | list | show | log"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.status import Status

from shipyard.cli.client import Client
from shipyard.cli.errors import CliError
from shipyard.cli.render import JsonOpt, console, emit_json, line, short, status, table, when

app = typer.Typer(help="Cut releases, pick fixes, inspect candidates.", no_args_is_help=True)

WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="wait for the build to finish")]


def _wait_built(
    client: Client, project: str, candidate: dict[str, Any], quiet: bool
) -> dict[str, Any]:
    """Poll until the build is done, showing a spinner and the last log line."""
    path = f"/api/v1/projects/{project}/candidates/{candidate['name']}"
    spinner = None if quiet else Status(f"building {candidate['name']} ...", console=console)
    if spinner:
        spinner.start()
    try:
        while candidate["status"] == "building":
            time.sleep(0.3)
            candidate = client.get(path)
            if spinner and candidate.get("build_log"):
                tail = (client.get(f"{path}/log") or "").strip().splitlines()
                if tail:
                    spinner.update(f"building {candidate['name']}: [dim]{tail[-1][:100]}[/]")
    finally:
        if spinner:
            spinner.stop()
    return candidate


def _report_candidate(client: Client, project: str, c: dict[str, Any], json_: bool) -> None:
    if json_:
        emit_json(c)
    else:
        line(f"  candidate [bold]{c['name']}[/] at {short(c['sha'])}: {status(c['status'])}")
        for a in c["artifacts"]:
            line(f"    {a['name']}  [dim]{a['digest']}[/]")
        if c["status"] == "awaiting_artifacts":
            line("  [dim]no build command: register artifacts with `shipyard artifact register`[/]")
    if c["status"] == "failed":
        log = client.get(f"/api/v1/projects/{project}/candidates/{c['name']}/log") or ""
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise CliError(
            f"build of {c['name']} failed: {c['reason']}",
            "build_failed",
            hint=f"log: {c['build_log']}\n{tail}" if not json_ else None,
        )


@app.command("cut")
def cut(
    project: str,
    sha: Annotated[str | None, typer.Option(help="mainline commit (default: mainline tip)")] = None,
    version: Annotated[
        str | None, typer.Option(help="explicit version (default: next by scheme)")
    ] = None,
    bump: Annotated[
        str | None, typer.Option(help="semver part to bump: major | minor | patch")
    ] = None,
    allow_missing_pick: Annotated[
        bool, typer.Option(help="cut even if fixes picked into earlier releases are missing")
    ] = False,
    wait: WaitOpt = True,
    json_: JsonOpt = False,
) -> None:
    """Cut a release from a mainline commit: branch release/<version>, candidate <version>-rc.1, built once."""
    client = Client()
    r = client.post(
        f"/api/v1/projects/{project}/releases",
        {"sha": sha, "version": version, "bump": bump, "allow_missing_pick": allow_missing_pick},
    )
    c = r["candidates"][0]
    if not json_:
        line(
            f"[green]✓[/] cut release [bold]{r['version']}[/] from {short(r['base_sha'])} on branch {r['branch']}"
        )
    if wait:
        c = _wait_built(client, project, c, json_)
    if json_:
        r["candidates"][0] = c
        emit_json(r)
        if c["status"] == "failed":
            raise CliError(f"build of {c['name']} failed: {c['reason']}", "build_failed")
        return
    _report_candidate(client, project, c, json_)


@app.command("pick")
def pick(
    project: str,
    version: str,
    shas: Annotated[list[str], typer.Argument(help="commits to cherry-pick, in order")],
    wait: WaitOpt = True,
    json_: JsonOpt = False,
) -> None:
    """Cherry-pick commits onto release/<version> and mint the next candidate, built once."""
    client = Client()
    c = client.post(f"/api/v1/projects/{project}/releases/{version}/picks", {"shas": shas})
    if not json_:
        picked = ", ".join(f"{short(p['source_sha'])} → {short(p['new_sha'])}" for p in c["picks"])
        line(f"[green]✓[/] picked {picked} onto release/{version}")
    if wait:
        c = _wait_built(client, project, c, json_)
    _report_candidate(client, project, c, json_)


@app.command("list")
def list_(project: str, json_: JsonOpt = False) -> None:
    """Releases with their candidates, newest first."""
    rs = Client().get(f"/api/v1/projects/{project}/releases")
    if json_:
        return emit_json(rs)
    rows = []
    for r in rs:
        for c in r["candidates"] or [{}]:
            rows.append(
                [
                    r["version"],
                    c.get("name", ""),
                    short(c.get("sha")),
                    _status(c),
                    ", ".join(f"{a['name']} {a['digest'][7:19]}" for a in c.get("artifacts", [])),
                    c.get("created_by", ""),
                    when(c.get("created_at")),
                ]
            )
    table(
        f"Releases of {project}",
        ["release", "candidate", "sha", "status", "artifacts", "by", "at"],
        rows,
    )


def _status(c: dict[str, Any]) -> str:
    """The status cell: a veto names who, when and why (it wins over the build status)."""
    veto = c.get("veto")
    if not veto:
        return status(c.get("status", ""))
    why = f": {veto['reason']}" if veto["reason"] else ""
    return f"{status('vetoed')} by {veto['by']} {when(veto['at'])}{why}"


@app.command("show")
def show(project: str, version: str, json_: JsonOpt = False) -> None:
    """One release: candidates (SHA, digests, build status, log) and the changelog."""
    r = Client().get(f"/api/v1/projects/{project}/releases/{version}")
    if json_:
        return emit_json(r)
    line(
        f"[bold]{project} {r['version']}[/]  branch {r['branch']}  "
        f"cut from {short(r['base_sha'])} by {r['created_by']} at {when(r['created_at'])}"
    )
    rows = []
    for c in r["candidates"]:
        digests = "\n".join(f"{a['name']} {a['digest']}" for a in c["artifacts"]) or "-"
        rows.append(
            [
                c["name"],
                short(c["sha"]),
                _status(c),
                digests,
                c["build_log"] or "",
                c["reason"],
            ]
        )
    table("Candidates", ["candidate", "sha", "status", "artifacts", "log", "reason"], rows)
    since = f"since {r['previous_version']}" if r["previous_version"] else "(first release)"
    rows = [
        [
            "pick" if e["picked"] else "",
            short(e["sha"]),
            e["type"] or "",
            f"#{e['pr']}" if e["pr"] else "",
            e["subject"],
            e["author"],
        ]
        for e in r["changelog"]
    ]
    table(f"Changelog {since}", ["", "sha", "type", "PR", "subject", "author"], rows)
    if r["changelog_truncated"]:
        line("[dim](changelog truncated)[/]")


@app.command("log")
def log(project: str, candidate: str, json_: JsonOpt = False) -> None:
    """Print a candidate's build log."""
    text = Client().get(f"/api/v1/projects/{project}/candidates/{candidate}/log") or ""
    if json_:
        return emit_json({"candidate": candidate, "log": text})
    typer.echo(text, nl=False)
