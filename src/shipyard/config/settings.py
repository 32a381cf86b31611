"""Server settings from the environment: SHIPYARD_DATA_DIR, SHIPYARD_DATABASE_URL, SHIPYARD_HOST,
SHIPYARD_PORT, SHIPYARD_MIGRATION_DATABASE_URL, SHIPYARD_AUDIT_KEY_FILE. Explicit overrides
(e.g. command-line options) win over the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from shipyard.errors import ConfigError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Settings"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8420


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    migration_database_url: str | None = None  # PostgreSQL: the tables' owner, to migrate as
    audit_key_file: Path | None = None  # None: audit.key in the data dir

    @classmethod
    def from_env(
        cls,
        overrides: Mapping[str, object | None] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """``overrides`` keys: data_dir, database_url, host, port; None values are ignored."""
        env = os.environ if environ is None else environ
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        known = {"data_dir", "database_url", "host", "port"}
        unknown = set(given) - known - {"migration_database_url", "audit_key_file"}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")

        def pick(key: str) -> str | None:
            if key in given:
                return str(given[key])
            return env.get(f"SHIPYARD_{key.upper()}") or None

        data_dir = Path(pick("data_dir") or platformdirs.user_data_dir("shipyard")).expanduser()
        database_url = pick("database_url") or f"sqlite:///{data_dir / 'shipyard.db'}"
        port_text = pick("port") or str(DEFAULT_PORT)
        try:
            port = int(port_text)
        except ValueError:
            port = -1
        if not 0 <= port <= 65535:
            raise ConfigError("environment", None, "SHIPYARD_PORT", f"{port_text!r} is not a port")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            host=pick("host") or DEFAULT_HOST,
            port=port,
            migration_database_url=pick("migration_database_url"),
            audit_key_file=Path(key).expanduser() if (key := pick("audit_key_file")) else None,
        )
