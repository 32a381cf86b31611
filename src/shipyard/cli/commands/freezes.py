"""shipyard freeze add | list | end: freezes put on an environment from the server"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli.client import Client
from shipyard.cli.render import JsonOpt, emit_json, line, table, when

app = typer.Typer(
    help="Freeze an environment now, whatever its candidates' shipyard.yaml says.",
    no_args_is_help=True,
)


def _describe(f: dict[str, Any]) -> str:
    return (
        f"freeze #{f['id']}: {f['project']}/{f['environment']} until {when(f['end'])} UTC "
        f"({f['reason']})"
    )


@app.command("add")
def add(
    project: str,
    environment: str,
    reason: Annotated[str, typer.Option(help="why; shown to whoever the freeze stops")],
    duration: Annotated[str | None, typer.Option(help="from now: 2h, 1h30m, 3d")] = None,
    until: Annotated[
        str | None, typer.Option(help="end time with its offset: 2026-12-24T18:00+00:00")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Freeze an environment from now: deployments wait (rollbacks pass unless the environment
    says otherwise); --override-freeze with a reason and a second approver still works."""
    body = {"reason": reason, "duration": duration, "until": until}
    f = Client().post(f"/api/v1/projects/{project}/environments/{environment}/freezes", body)
    if json_:
        return emit_json(f)
    line(f"[green]✓[/] {_describe(f)}")


@app.command("list")
def list_(
    project: Annotated[str | None, typer.Argument(help="only this project")] = None,
    environment: Annotated[str | None, typer.Argument(help="only this environment")] = None,
    json_: JsonOpt = False,
) -> None:
    """Server freezes, newest first, ended ones included."""
    params = {k: v for k, v in (("project", project), ("environment", environment)) if v}
    fs = Client().get("/api/v1/freezes", params=params)
    if json_:
        return emit_json(fs)
    table(
        "Freezes",
        ["#", "project", "environment", "from", "until", "reason", "by", "ended by"],
        [
            [
                f["id"],
                f["project"],
                f["environment"],
                when(f["start"]),
                when(f["end"]),
                f["reason"],
                f["created_by"],
                f["ended_by"],
            ]
            for f in fs
        ],
    )


@app.command("end")
def end(freeze_id: int, json_: JsonOpt = False) -> None:
    """Lift a freeze now (approvers and admins)."""
    f = Client().post(f"/api/v1/freezes/{freeze_id}/end", {})
    if json_:
        return emit_json(f)
    line(f"[green]✓[/] freeze #{f['id']} ended by {f['ended_by']}")
