"""The parts of a candidate's shipyard.yaml the release use cases need, read in one place."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shipyard.config.loader import load_config
from shipyard.config.schema import ProjectConfig
from shipyard.domain.versions import Bump, Scheme

CONFIG_FILE = "shipyard.yaml"


@dataclass(frozen=True)
class ReleaseSettings:
    scheme: Scheme
    bump: Bump
    initial: str
    build_command: str | None
    artifact_globs: tuple[str, ...]
    build_timeout_s: float
    build_env: tuple[tuple[str, str], ...]


@lru_cache(maxsize=256)
def project_config(text: str) -> ProjectConfig:
    """Parsed once per distinct text: candidates snapshot the file, so texts repeat a lot."""
    return load_config(text, CONFIG_FILE)


def release_settings(text: str) -> ReleaseSettings:
    cfg = project_config(text)
    build = cfg.build
    return ReleaseSettings(
        scheme=Scheme(cfg.versioning.scheme),
        bump=Bump(cfg.versioning.bump),
        initial=cfg.versioning.initial,
        build_command=build.command,
        artifact_globs=tuple(build.artifacts),
        build_timeout_s=float(build.timeout),
        build_env=tuple(sorted(build.env.items())),
    )
