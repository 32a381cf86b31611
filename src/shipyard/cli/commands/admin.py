"""shipyard token create | list | revoke, shipyard whoami, shipyard events"""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.client import Client
from shipyard.cli.render import JsonOpt, emit_json, line, table, when

tokens = typer.Typer(help="API tokens (admin only).", no_args_is_help=True)


@tokens.command("create")
def create(
    user: Annotated[str, typer.Option(help="who will use the token")],
    role: Annotated[str, typer.Option(help="viewer | deployer | approver | admin")],
    json_: JsonOpt = False,
) -> None:
    """Create a token; it is shown once and stored only hashed."""
    t = Client().post("/api/v1/tokens", {"user": user, "role": role})
    if json_:
        return emit_json(t)
    line(f"[green]✓[/] token #{t['id']} for [bold]{t['user']}[/] ({t['role']}), shown once:")
    typer.echo(t["token"])


@tokens.command("list")
def list_(json_: JsonOpt = False) -> None:
    """List tokens (never their secrets)."""
    ts = Client().get("/api/v1/tokens")
    if json_:
        return emit_json(ts)
    table(
        "Tokens",
        ["id", "user", "role", "created by", "created", "revoked"],
        [
            [
                t["id"],
                t["user"],
                t["role"],
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
    line(f"{me['user']} ({me['role']})")


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
