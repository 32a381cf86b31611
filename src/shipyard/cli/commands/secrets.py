"""shipyard secret set | list | rm: values go in from stdin and never come back out."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from shipyard.cli.client import Client
from shipyard.cli.errors import CliError
from shipyard.cli.render import JsonOpt, emit_json, line, table, when

app = typer.Typer(
    help="Secrets of a project environment, handed to its processes as variables.",
    no_args_is_help=True,
)

Project = Annotated[str, typer.Argument(help="project name")]
Env = Annotated[str, typer.Argument(help="environment, e.g. production")]
Name = Annotated[str, typer.Argument(help="variable name, e.g. STRIPE_KEY")]


def _path(project: str, environment: str, name: str | None = None) -> str:
    base = f"/api/v1/projects/{project}/environments/{environment}/secrets"
    return f"{base}/{name}" if name else base


def _read_value(name: str) -> str:
    """From a terminal: asked without echo. From a pipe: all of stdin, less one final newline."""
    if sys.stdin.isatty():
        value: str = typer.prompt(f"value of {name}", hide_input=True, err=True)
        return value
    data = sys.stdin.buffer.read()
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise CliError("a secret's value must be UTF-8 text", "invalid") from None
    if not data:
        raise CliError(
            f"no value for {name} on stdin",
            "invalid",
            hint=f'printf %s "$VALUE" | shipyard secret set ... {name}',
        )
    return text.removesuffix("\n")


@app.command("set")
def set_(project: Project, environment: Env, name: Name, json_: JsonOpt = False) -> None:
    """Set a secret, reading its value from stdin (never from the command line)."""
    value = _read_value(name)
    done = Client().request("PUT", _path(project, environment, name), json={"value": value})
    if json_:
        return emit_json(done)
    line(
        f"[green]✓[/] secret [bold]{done['name']}[/] set in {project}/{environment}; "
        "processes get it when they next start"
    )


@app.command("list")
def list_(project: Project, environment: Env, json_: JsonOpt = False) -> None:
    """Names of the secrets, who set them and when (values are never shown)."""
    found = Client().get(_path(project, environment))
    if json_:
        return emit_json(found)
    table(
        f"secrets of {project}/{environment}",
        ["name", "set by", "set"],
        [[s["name"], s["set_by"], when(s["set_at"])] for s in found],
    )


@app.command("rm")
def rm(project: Project, environment: Env, name: Name) -> None:
    """Remove a secret; processes started after this no longer get it."""
    Client().delete(_path(project, environment, name))
    line(f"[green]✓[/] secret [bold]{name}[/] removed from {project}/{environment}")
