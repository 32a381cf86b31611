"""The build port: run a project's build command once in a clean checkout and collect its artifacts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BuildRequest:
    source_dir: Path  # a clean worktree of the candidate's SHA
    command: str  # run by /bin/sh -c
    env: Mapping[
        str, str
    ]  # SHIPYARD_VERSION, SHIPYARD_CANDIDATE, SHIPYARD_SHA (ARTIFACTS_DIR is added)
    artifacts_dir: Path  # empty directory the command writes its outputs into
    log_path: Path  # stdout+stderr of the build, appended as it runs
    timeout_s: float = 1800.0
    artifact_globs: Sequence[str] = field(default_factory=lambda: ("**/*",))
    run_as: str | None = None  # the user the command runs as (None: the server's default)


@dataclass(frozen=True, slots=True)
class BuiltFile:
    name: str  # path relative to artifacts_dir, with "/" separators
    path: Path


@dataclass(frozen=True, slots=True)
class BuildResult:
    succeeded: bool
    exit_code: int | None  # None when it timed out or could not start
    reason: str  # "" on success, else one readable line
    files: tuple[BuiltFile, ...]


class BuildInterrupted(Exception):
    """The builder was stopped (the server stops) before the build ended: it must run again."""


class Builder(Protocol):
    def run(self, request: BuildRequest) -> BuildResult:
        """Raises BuildInterrupted when ``stop`` ended it."""

    def stop(self) -> None:
        """Kill every build still running (the server stops)."""
