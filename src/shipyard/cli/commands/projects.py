"""shipyard project add | list | show"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.client import Client
from shipyard.cli.render import JsonOpt, emit_json, line, table, when

app = typer.Typer(help="Register and inspect projects (git repositories).", no_args_is_help=True)


def _source(path_or_url: str) -> str:
    """A local path is sent absolute: the server resolves it on its own file system."""
    if "://" in path_or_url or path_or_url.startswith("git@"):
        return path_or_url
    return str(Path(path_or_url).expanduser().resolve())


@app.command("add")
def add(
    path_or_url: Annotated[str, typer.Argument(help="a git repository: local path or URL")],
    name: Annotated[
        str | None, typer.Option(help="project name (default: from shipyard.yaml or the folder)")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Register a repository; the mainline comes from its shipyard.yaml (default: main)."""
    p = Client().post("/api/v1/projects", {"source": _source(path_or_url), "name": name})
    if json_:
        return emit_json(p)
    line(
        f"[green]✓[/] project [bold]{p['name']}[/] added (mainline [bold]{p['mainline']}[/], {p['source']})"
    )


@app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """List projects."""
    ps = Client().get("/api/v1/projects")
    if json_:
        return emit_json(ps)
    table(
        "Projects",
        ["name", "mainline", "source", "added"],
        [[p["name"], p["mainline"], p["source"], when(p["created_at"])] for p in ps],
    )


@app.command("show")
def show(project: str, json_: JsonOpt = False) -> None:
    """Show one project."""
    p = Client().get(f"/api/v1/projects/{project}")
    if json_:
        return emit_json(p)
    table(
        None,
        ["name", "mainline", "source", "added"],
        [[p["name"], p["mainline"], p["source"], when(p["created_at"])]],
    )
