"""shipyard serve: API + engine in one process, SQLite by default."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import platformdirs
import typer

from shipyard.cli.render import line


def default_data_dir() -> Path:
    return Path(os.environ.get("SHIPYARD_DATA_DIR") or platformdirs.user_data_dir("shipyard"))


def serve(
    data_dir: Annotated[
        Path | None, typer.Option(help="state directory [env SHIPYARD_DATA_DIR]")
    ] = None,
    host: Annotated[str, typer.Option(envvar="SHIPYARD_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SHIPYARD_PORT")] = 8420,
    database_url: Annotated[
        str | None,
        typer.Option(envvar="SHIPYARD_DATABASE_URL", help="default: SQLite in the data dir"),
    ] = None,
    secrets_key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="SHIPYARD_SECRETS_KEY_FILE",
            help="key that seals secrets (same file on every replica); default: made in the data dir",
        ),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="SHIPYARD_WORK_DIR",
            help="where deployed code's files go, reachable by its user; default: see docs",
        ),
    ] = None,
) -> None:
    """Start the Shipyard server (API, engine and OpenAPI docs at /docs)."""
    import uvicorn  # the server stack loads only here: every other command stays a thin client

    from shipyard.api.app import create_app
    from shipyard.bootstrap import bootstrap
    from shipyard.services.tokens import bootstrap_admin

    directory = (data_dir or default_data_dir()).expanduser().resolve()
    runtime = bootstrap(
        directory, database_url, secrets_key_file=secrets_key_file, work_dir=work_dir
    )
    token = bootstrap_admin(runtime.services)
    if token:
        line("[bold yellow]First start: bootstrap admin token (shown once, keep it safe):[/]")
        typer.echo(token, err=False)
    line(f"Shipyard on http://{host}:{port}  (data: {directory}; API docs: /docs)")
    worker = runtime.worker()
    worker.start()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        uvicorn.run(create_app(runtime.services), host=host, port=port, log_level="warning")
    finally:
        worker.stop()
        runtime.close()
