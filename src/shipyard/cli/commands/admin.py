"""shipyard token create | list | revoke, shipyard whoami, shipyard events, shipyard admin token"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.client import Client
from shipyard.cli.render import JsonOpt, emit_json, line, table, when

tokens = typer.Typer(help="API tokens (admin only).", no_args_is_help=True)
host = typer.Typer(
    help="Run on the server's host, against its database directly.", no_args_is_help=True
)


def _scope(t: dict[str, list[str]]) -> str:
    where = [*t.get("projects", []), *t.get("environments", [])]
    return "/".join(where) if where else "everywhere"


@tokens.command("create")
def create(
    user: Annotated[str, typer.Option(help="who will use the token")],
    role: Annotated[str, typer.Option(help="viewer | deployer | approver | admin")],
    email: Annotated[
        list[str] | None, typer.Option(help="an email the user commits as (repeatable)")
    ] = None,
    project: Annotated[
        list[str] | None, typer.Option(help="the role holds only in this project (repeatable)")
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(help="the role holds only in this environment (repeatable)"),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Create a token; it is shown once and stored only hashed."""
    body = {
        "user": user,
        "role": role,
        "emails": email or [],
        "projects": project or [],
        "environments": env or [],
    }
    t = Client().post("/api/v1/tokens", body)
    if json_:
        return emit_json(t)
    line(
        f"[green]✓[/] token #{t['id']} for [bold]{t['user']}[/] ({t['role']}, {_scope(t)}), "
        "shown once:"
    )
    typer.echo(t["token"])


@tokens.command("list")
def list_(json_: JsonOpt = False) -> None:
    """List tokens (never their secrets)."""
    ts = Client().get("/api/v1/tokens")
    if json_:
        return emit_json(ts)
    table(
        "Tokens",
        ["id", "user", "role", "where", "emails", "created by", "created", "revoked"],
        [
            [
                t["id"],
                t["user"],
                t["role"],
                _scope(t),
                ", ".join(t.get("emails", [])),
                t["created_by"],
                when(t["created_at"]),
                when(t["revoked_at"]),
            ]
            for t in ts
        ],
    )


@tokens.command("revoke")
def revoke(token_id: int, json_: JsonOpt = False) -> None:
    """Revoke a token at once."""
    Client().delete(f"/api/v1/tokens/{token_id}")
    if json_:
        return emit_json({"revoked": token_id})
    line(f"[green]✓[/] token #{token_id} revoked")


def whoami(json_: JsonOpt = False) -> None:
    """Show who the current token belongs to."""
    me = Client().get("/api/v1/whoami")
    if json_:
        return emit_json(me)
    line(f"{me['user']} ({me['role']}, {_scope(me)})")


@host.command("token")
def recovery_token(
    data_dir: Annotated[
        Path | None, typer.Option(help="the server's state directory [env SHIPYARD_DATA_DIR]")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(envvar="SHIPYARD_DATABASE_URL", help="default: SQLite in the data dir"),
    ] = None,
) -> None:
    """Mint a recovery admin token from the database directly, when every admin token is lost.

    Only who can read the server's data dir (or its database) can run it; the event
    ``token.recovered`` records it with the host's user name."""
    from shipyard.bootstrap import bootstrap  # the server stack, only for this command
    from shipyard.cli.commands.serve import default_data_dir
    from shipyard.services.tokens import recovery_admin

    directory = (data_dir or default_data_dir()).expanduser().resolve()
    if database_url is None and not (directory / "shipyard.db").exists():
        typer.echo(f"no Shipyard database in {directory}", err=True)
        raise typer.Exit(2)
    runtime = bootstrap(directory, database_url)
    try:
        token_id, token = recovery_admin(runtime.services, by=f"host:{getpass.getuser()}")
    finally:
        runtime.close()
    line(f"[bold yellow]Recovery admin token #{token_id} (shown once, keep it safe):[/]")
    typer.echo(token)


def events(
    project: Annotated[str | None, typer.Option(help="only this project")] = None,
    kind: Annotated[
        str | None, typer.Option(help="a whole kind, or a prefix ending at a dot: deployment")
    ] = None,
    before: Annotated[
        int | None, typer.Option(help="the newest events below this id, newest first")
    ] = None,
    newest: Annotated[
        bool, typer.Option("--newest", help="the newest events, newest first")
    ] = False,
    limit: Annotated[int, typer.Option(help="at most this many (up to 1000)")] = 50,
    json_: JsonOpt = False,
) -> None:
    """The audit log: who changed what, when (oldest first; newest first with --newest or --before)."""
    params: dict[str, str | int] = {"limit": limit}
    if newest:
        params["newest"] = "true"
    for name, value in (("project", project), ("kind", kind), ("before", before)):
        if value is not None and value != "":
            params[name] = value
    es = Client().get("/api/v1/events", params=params)
    if json_:
        return emit_json(es)
    table(
        "Events",
        ["#", "at", "actor", "kind", "project", "subject"],
        [[e["id"], when(e["at"]), e["actor"], e["kind"], e["project"], e["subject"]] for e in es],
    )
