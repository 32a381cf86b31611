"""The `shipyard` command. Errors become one red line and an exit code (cli/errors.py)."""

from __future__ import annotations

import sys

import typer

from shipyard.cli.commands import (
    admin,
    artifacts,
    audit,
    demo,
    deployments,
    flags,
    freezes,
    projects,
    releases,
    rollouts,
    secrets,
    serve,
)
from shipyard.cli.errors import CliError, show

app = typer.Typer(
    help="Shipyard: cut releases, build once, promote the same artifact, release progressively.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.add_typer(projects.app, name="project")
app.add_typer(releases.app, name="release")
app.add_typer(artifacts.app, name="artifact")
app.add_typer(flags.app, name="flag")
app.add_typer(rollouts.app, name="rollout")
app.add_typer(freezes.app, name="freeze")
app.add_typer(secrets.app, name="secret")
app.add_typer(admin.tokens, name="token")
app.add_typer(audit.app, name="audit")
app.add_typer(admin.host, name="admin")
app.command("whoami")(admin.whoami)
app.command("events")(admin.events)
for _name in ("deploy", "approve", "reject", "rollback", "veto", "status", "history", "diff"):
    app.command(_name)(getattr(deployments, _name))
app.command("deployment")(deployments.show)


def run() -> None:
    try:
        app()
    except CliError as err:
        sys.exit(show(err, as_json="--json" in sys.argv))


if __name__ == "__main__":
    run()
