"""shipyard flag create | set | rollout | kill | list | show | segments"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.client import Client
from shipyard.cli.errors import CliError
from shipyard.cli.render import JsonOpt, emit_json, line, table, when

app = typer.Typer(
    help="Feature flags per project environment, evaluated in-process by apps.",
    no_args_is_help=True,
)

Project = Annotated[str, typer.Argument(help="project name")]
Env = Annotated[str, typer.Argument(help="environment, e.g. production")]
Key = Annotated[str, typer.Argument(help="flag key, e.g. checkout.v2")]


def _path(project: str, environment: str, key: str | None = None) -> str:
    base = f"/api/v1/projects/{project}/environments/{environment}/flags"
    return f"{base}/{key}" if key else base


def _read_json(file: Path) -> Any:
    try:
        text = file.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror}", "invalid") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{file}:{exc.lineno}: not JSON: {exc.msg}", "invalid") from exc


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:g}%"


def _state(flag: dict[str, Any]) -> str:
    return "[green]on[/]" if flag["enabled"] else "[red]off[/]"


def _done(verb: str, flag: dict[str, Any]) -> None:
    if "request" in flag:  # a protected environment: the change waits for a second person
        line(
            f"[cyan]…[/] {flag['project']}/{flag['environment']} is protected: change request "
            f"[bold]#{flag['request']}[/] to {flag['key']} waits for an approver "
            f"(`shipyard flag approve {flag['request']}`)"
        )
        return
    line(
        f"[green]✓[/] {verb} [bold]{flag['key']}[/] in {flag['project']}/{flag['environment']}: "
        f"{_state(flag)}, rollout {_pct(flag['rollout'])}, version {flag['version']}"
    )


@app.command("create")
def create(
    project: Project,
    environment: Env,
    key: Key,
    enabled: Annotated[bool, typer.Option("--enabled", help="switch it on at once")] = False,
    rollout: Annotated[
        float | None, typer.Option(help="percent of users (0-100, e.g. 10 or 0.1)")
    ] = None,
    stickiness: Annotated[str, typer.Option(help="what buckets users: default, userId, ...")] = (
        "default"
    ),
    description: Annotated[str, typer.Option(help="what the flag is for")] = "",
    file: Annotated[
        Path | None, typer.Option("--file", help="a full Unleash feature definition (JSON)")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Create a flag (off unless --enabled; on for everyone once enabled, unless --rollout)."""
    body: dict[str, Any] = {
        "key": key,
        "description": description,
        "enabled": enabled,
        "rollout": rollout,
        "stickiness": stickiness,
    }
    if file is not None:
        body["definition"] = _read_json(file)
    flag = Client().post(_path(project, environment), body)
    if json_:
        return emit_json(flag)
    _done("created", flag)


@app.command("set")
def set_(
    project: Project,
    environment: Env,
    key: Key,
    enable: Annotated[bool, typer.Option("--enable", help="switch the flag on")] = False,
    disable: Annotated[bool, typer.Option("--disable", help="switch the flag off")] = False,
    file: Annotated[
        Path | None, typer.Option("--file", help="replace the definition (Unleash feature JSON)")
    ] = None,
    description: Annotated[str | None, typer.Option(help="a new description")] = None,
    json_: JsonOpt = False,
) -> None:
    """Switch a flag on or off, or replace its whole definition from a JSON file."""
    if enable and disable:
        raise CliError("--enable and --disable exclude each other", "invalid")
    if not (enable or disable or file or description is not None):
        raise CliError("nothing to set", "invalid", hint="use --enable, --disable or --file")
    client = Client()
    flag: dict[str, Any] | None = None
    if file is not None:
        flag = client.request("PUT", _path(project, environment, key), json=_read_json(file))
    if enable or disable or description is not None:
        patch: dict[str, Any] = {"description": description}
        if enable or disable:
            patch["enabled"] = enable
        flag = client.request("PATCH", _path(project, environment, key), json=patch)
    assert flag is not None
    if json_:
        return emit_json(flag)
    _done("set", flag)


@app.command("rollout")
def rollout(
    project: Project,
    environment: Env,
    key: Key,
    percent: Annotated[float, typer.Argument(help="percent of users, 0-100 (0.1 = 1 in 1000)")],
    stickiness: Annotated[
        str | None, typer.Option(help="what buckets users (default: keep, else 'default')")
    ] = None,
    group_id: Annotated[
        str | None, typer.Option(help="bucketing group (default: keep, else the key)")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Set the share of users who get the flag; raising it only ever adds users."""
    flag = Client().post(
        f"{_path(project, environment, key)}/rollout",
        {"percent": percent, "stickiness": stickiness, "group_id": group_id},
    )
    if json_:
        return emit_json(flag)
    _done("rolled out", flag)
    if "request" not in flag and not flag["enabled"]:
        line(
            f"  [yellow]the flag is off[/]: `shipyard flag set {project} {environment} {key} --enable`"
        )


@app.command("kill")
def kill(project: Project, environment: Env, key: Key, json_: JsonOpt = False) -> None:
    """The kill switch: off for everyone at the apps' next poll, whatever the strategies say."""
    flag = Client().post(f"{_path(project, environment, key)}/kill", {})
    if json_:
        return emit_json(flag)
    _done("killed", flag)


@app.command("list")
def list_(project: Project, environment: Env, json_: JsonOpt = False) -> None:
    """The flags of one environment and its state revision (the ETag apps poll)."""
    r = Client().get(_path(project, environment))
    if json_:
        return emit_json(r)
    rows = [
        [
            f["key"],
            _state(f),
            _pct(f["rollout"]),
            len(f["definition"].get("strategies") or []),
            len(f["definition"].get("variants") or []),
            f["version"],
            f["updated_by"],
            when(f["updated_at"]),
            f["description"],
        ]
        for f in r["flags"]
    ]
    table(
        f"Flags of {project}/{environment} (revision {r['revision']})",
        [
            "flag",
            "state",
            "rollout",
            "strategies",
            "variants",
            "version",
            "by",
            "at",
            "description",
        ],
        rows,
    )


def _strategy(s: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in (s.get("parameters") or {}).items())
    extra = []
    if s.get("constraints"):
        extra.append(f"{len(s['constraints'])} constraints")
    if s.get("segments"):
        extra.append(f"segments {s['segments']}")
    if s.get("disabled"):
        extra.append("disabled")
    tail = f" [dim]({'; '.join(extra)})[/]" if extra else ""
    return f"{s['name']}({params}){tail}"


@app.command("show")
def show(
    project: Project,
    environment: Env,
    key: Key,
    history: Annotated[int, typer.Option(help="how many changes to show")] = 20,
    json_: JsonOpt = False,
) -> None:
    """One flag: its definition and its change history (who, when, before → after)."""
    f = Client().get(_path(project, environment, key), params={"history": history})
    if json_:
        return emit_json(f)
    d = f["definition"]
    line(
        f"[bold]{f['key']}[/] in {project}/{environment}: {_state(f)}, rollout {_pct(f['rollout'])}"
        f"  version {f['version']}, state revision {f['revision']}"
    )
    if f["description"]:
        line(f"  {f['description']}")
    line(f"  created by {f['created_by']} at {when(f['created_at'])}")
    for s in d.get("strategies") or []:
        line(f"  strategy  {_strategy(s)}")
    for v in d.get("variants") or []:
        line(f"  variant   {v['name']} weight {v.get('weight', 0)}")
    for dep in d.get("dependencies") or []:
        line(f"  requires  {dep['feature']}")
    table(
        "History (newest first)",
        ["rev", "at", "who", "change", "summary"],
        [[c["revision"], when(c["at"]), c["actor"], c["kind"], c["summary"]] for c in f["history"]],
    )


@app.command("segments")
def segments(
    project: Project,
    environment: Env,
    file: Annotated[Path, typer.Option("--file", help='JSON list of {"id", "constraints"}')],
    json_: JsonOpt = False,
) -> None:
    """Replace the environment's segments (shared constraint sets strategies refer to by id)."""
    data = _read_json(file)
    body = {"segments": data.get("segments") if isinstance(data, dict) else data}
    r = Client().request(
        "PUT", f"/api/v1/projects/{project}/environments/{environment}/segments", json=body
    )
    if json_:
        return emit_json(r)
    if "request" in r:
        line(
            f"[cyan]…[/] {project}/{environment} is protected: change request "
            f"[bold]#{r['request']}[/] to its segments waits for an approver"
        )
        return
    line(f"[green]✓[/] segments of {project}/{environment} set; revision {r['revision']}")


@app.command("requests")
def requests(
    project: Project,
    environment: Env,
    all_: Annotated[bool, typer.Option("--all", help="decided ones too")] = False,
    json_: JsonOpt = False,
) -> None:
    """Flag changes of a protected environment waiting for approval."""
    rs = Client().get(
        f"/api/v1/projects/{project}/environments/{environment}/flag-requests",
        params={"all": "true"} if all_ else {},
    )
    if json_:
        return emit_json(rs)
    table(
        f"Flag change requests in {project}/{environment}",
        ["#", "flag", "change", "state", "by", "at", "approved by"],
        [
            [
                r["request"],
                r["key"],
                r["kind"],
                r["state"],
                r["requested_by"],
                when(r["requested_at"]),
                ", ".join(r["approvals"]),
            ]
            for r in rs
        ],
    )


def _decide(request_id: int, verb: str, json_: bool) -> None:
    r = Client().post(f"/api/v1/flag-requests/{request_id}/{verb}", {})
    if json_:
        return emit_json(r)
    line(f"[green]✓[/] change request #{r['request']} to {r['key']}: {r['state']}")


@app.command("approve")
def approve(request_id: int, json_: JsonOpt = False) -> None:
    """Approve a flag change request (not your own); applied once enough approvers agree."""
    _decide(request_id, "approve", json_)


@app.command("reject")
def reject(request_id: int, json_: JsonOpt = False) -> None:
    """Close a flag change request without applying it."""
    _decide(request_id, "reject", json_)
