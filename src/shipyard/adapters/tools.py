"""Programs an adapter runs: what it needs on PATH and how to install it, checked before use."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass

from shipyard.errors import MissingToolError


@dataclass(frozen=True, slots=True)
class Tool:
    """A program on PATH, and the command that installs it on this machine kind (Debian)."""

    name: str
    install: str  # e.g. "apt-get install haproxy"

    def present(self) -> bool:
        return shutil.which(self.name) is not None

    def error(self, needed_by: str) -> MissingToolError:
        return MissingToolError(self.name, needed_by, self.install)


def missing(tools: Iterable[Tool]) -> tuple[Tool, ...]:
    return tuple(tool for tool in tools if not tool.present())


def require(tools: Iterable[Tool], needed_by: str) -> None:
    """Raise MissingToolError for the first tool not on PATH."""
    for tool in missing(tools):
        raise tool.error(needed_by)
