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
    max_body_bytes: Annotated[
        int,
        typer.Option(
            envvar="SHIPYARD_MAX_BODY_BYTES", min=1024, help="larger request bodies get a 413"
        ),
    ] = 1024 * 1024,
    migration_database_url: Annotated[
        str | None,
        typer.Option(
            envvar="SHIPYARD_MIGRATION_DATABASE_URL",
            help="PostgreSQL: the tables' owner, to migrate as (the server then runs as "
            "--database-url's role, which may only read and append the audit log)",
        ),
    ] = None,
    audit_key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="SHIPYARD_AUDIT_KEY_FILE",
            help="the key that seals the audit log (default: audit.key in the data dir, "
            "made 0600 on first start); the same file for every replica",
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
        directory,
        database_url,
        audit_key_file=audit_key_file.expanduser() if audit_key_file else None,
        migration_database_url=migration_database_url,
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
        app = create_app(runtime.services, max_body_bytes=max_body_bytes)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        worker.stop()
        runtime.close()
