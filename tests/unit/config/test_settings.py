from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from shipyard.config.settings import Settings
from shipyard.errors import ConfigError


def test_defaults() -> None:
    s = Settings.from_env(environ={})
    assert s.data_dir == Path(platformdirs.user_data_dir("shipyard"))
    assert s.database_url == f"sqlite:///{s.data_dir / 'shipyard.db'}"
    assert (s.host, s.port) == ("127.0.0.1", 8420)


def test_environment_and_overrides(tmp_path: Path) -> None:
    env = {
        "SHIPYARD_DATA_DIR": str(tmp_path),
        "SHIPYARD_HOST": "0.0.0.0",
        "SHIPYARD_PORT": "9000",
    }
    s = Settings.from_env(environ=env)
    assert (s.data_dir, s.host, s.port) == (tmp_path, "0.0.0.0", 9000)
    assert s.database_url == f"sqlite:///{tmp_path / 'shipyard.db'}"
    s = Settings.from_env(
        {"port": 1234, "host": None, "database_url": "postgresql://x/y"}, environ=env
    )
    assert (s.host, s.port, s.database_url) == ("0.0.0.0", 1234, "postgresql://x/y")


def test_bad_port() -> None:
    with pytest.raises(ConfigError, match="environment: SHIPYARD_PORT: 'http' is not a port"):
        Settings.from_env(environ={"SHIPYARD_PORT": "http"})


def test_the_owner_url_and_the_audit_key_file(tmp_path: Path) -> None:
    s = Settings.from_env(environ={})
    assert (s.migration_database_url, s.audit_key_file) == (None, None)
    env = {
        "SHIPYARD_MIGRATION_DATABASE_URL": "postgresql://owner@db/shipyard",
        "SHIPYARD_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
    }
    s = Settings.from_env(environ=env)
    assert s.migration_database_url == "postgresql://owner@db/shipyard"
    assert s.audit_key_file == tmp_path / "audit.key"
