"""shipyard audit head | verify: anchor the audit log elsewhere, and prove it unchanged."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.client import Client
from shipyard.cli.render import JsonOpt, emit_json, line, table

app = typer.Typer(help="The sealed audit log: its heads, and a check of every seal.")
ProjectOpt = Annotated[str | None, typer.Option(help="only this project's chain")]


@app.command("head")
def head(project: ProjectOpt = None, json_: JsonOpt = False) -> None:
    """The newest hash of each chain: copy it somewhere the database cannot reach."""
    if project is not None:
        heads = [Client().get(f"/api/v1/audit/head/{project}")]
    else:
        heads = Client().get("/api/v1/audit/head")["heads"]
    if json_:
        return emit_json(heads if project is None else heads[0])
    table(
        "Audit chain heads",
        ["project", "rows", "hash"],
        [[h["project"] or "(none)", h["seq"], h["hash"]] for h in heads],
    )


@app.command("verify")
def verify(
    project: ProjectOpt = None,
    anchor: Annotated[
        str | None, typer.Option(help="a hash `audit head` gave earlier: the log must reach it")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Recompute every seal; exit 7 naming the first event changed, deleted or forged."""
    params = {k: v for k, v in (("project", project), ("anchor", anchor)) if v is not None}
    report = Client().get("/api/v1/audit/verify", params=params)
    if json_:
        return emit_json(report)
    reached = f", reaching {anchor[:12]}…" if anchor else ""
    n = len(report["chains"])
    chains = f"{n} chain" if n == 1 else f"{n} chains"
    line(f"[green]✓[/] audit log intact: {report['rows']} rows in {chains}{reached}")
