"""shipyard artifact register"""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.client import Client
from shipyard.cli.render import JsonOpt, emit_json, line

app = typer.Typer(help="Artifacts built outside Shipyard.", no_args_is_help=True)


@app.command("register")
def register(
    project: str,
    candidate: str,
    name: Annotated[str, typer.Option(help="artifact name, e.g. app.tar.gz")],
    digest: Annotated[str, typer.Option(help="sha256:<64 hex digits>")],
    uri: Annotated[str | None, typer.Option(help="where the bytes live")] = None,
    json_: JsonOpt = False,
) -> None:
    """Attach an artifact your CI built to a candidate (checked by digest at every deploy)."""
    c = Client().post(
        f"/api/v1/projects/{project}/candidates/{candidate}/artifacts",
        {"name": name, "digest": digest, "uri": uri},
    )
    if json_:
        return emit_json(c)
    line(f"[green]✓[/] {name} ({digest}) registered on {c['name']}; status {c['status']}")
