"""A real PostgreSQL for the test session: initdb + pg_ctl in a temp dir, one database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

BIN = Path(os.environ.get("SHIPYARD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> bool:
    return (BIN / "initdb").exists()


class PostgresServer:
    """initdb and postgres refuse to run as root, so as root they run as the `postgres` user."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="shipyard-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self._counter = itertools.count(1)
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.base, "postgres")
            self.base.chmod(0o755)

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> PostgresServer:
        self._run(
            str(BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "engine",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        opts = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.base / "pg.log"),
            "-w",
            "-o",
            opts,
            "start",
        )
        return self

    def create_database(self) -> str:
        name = f"t{next(self._counter)}"
        with psycopg.connect(
            host=str(self.base), port=self.port, user="engine", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://engine@/{name}?host={self.base}&port={self.port}"

    def stop(self) -> None:
        try:
            self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
