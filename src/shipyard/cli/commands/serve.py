"""shipyard serve: API + engine in one process, SQLite by default."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import platformdirs
import typer

from shipyard.cli.errors import CliError
from shipyard.cli.render import line

if TYPE_CHECKING:
    from shipyard.bootstrap import ServerLock


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
    from sqlalchemy.engine import make_url

    from shipyard.api.app import create_app
    from shipyard.bootstrap import bootstrap, default_database_url
    from shipyard.services.tokens import bootstrap_admin

    directory = (data_dir or default_data_dir()).expanduser().resolve()
    url = database_url or default_database_url(directory)
    lock = _hold(directory, exclusive=make_url(url).get_backend_name() == "sqlite")
    sock = _listen(host, port)  # refused here, before any banner, not by uvicorn after it
    runtime = bootstrap(
        directory,
        url,
        audit_key_file=audit_key_file.expanduser() if audit_key_file else None,
        migration_database_url=migration_database_url,
        secrets_key_file=secrets_key_file,
        work_dir=work_dir,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for reaped in runtime.reap_children():
        line(f"[yellow]reaped {reaped} (left by a server that died)[/]")
    token = bootstrap_admin(runtime.services)
    if token:
        line("[bold yellow]First start: bootstrap admin token (shown once, keep it safe):[/]")
        typer.echo(token, err=False)
    line(f"Shipyard on http://{host}:{port}  (data: {directory}; API docs: /docs)")
    worker = runtime.worker()
    worker.start()
    # uvicorn shuts down gracefully on SIGTERM, restores the handler it found and raises the
    # signal again: this handler turns it into SystemExit, so the cleanup below runs (the
    # default one would end the process there, leaving the builds running)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        app = create_app(runtime.services, max_body_bytes=max_body_bytes)
        config = uvicorn.Config(app, log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        worker.stop()
        runtime.close()
        lock.release()


def _exit_on_signal(sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + sig)


def _hold(directory: Path, *, exclusive: bool) -> ServerLock:
    from shipyard.bootstrap import DataDirInUse, hold_data_dir

    try:
        return hold_data_dir(directory, exclusive=exclusive)
    except DataDirInUse as exc:
        raise CliError(exc.message, "in_use") from None


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket uvicorn will serve on, bound now so a taken port is one line."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"failed: {exc.strerror}"
        raise CliError(f"cannot listen on {host}:{port}: the address {reason}", "in_use") from None
    sock.set_inheritable(True)
    return sock
