"""What a use case needs from the outside, handed in by bootstrap (the composition root)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.ports.artifacts import ArtifactStore
from shipyard.ports.builds import Builder
from shipyard.ports.clock import Clock
from shipyard.ports.git import GitRepository
from shipyard.ports.metrics import MetricProvider, RouterCounters
from shipyard.ports.repositories import UnitOfWork
from shipyard.ports.routers import MissingBinary, TrafficRouter
from shipyard.ports.secrets import SecretCipher
from shipyard.ports.targets import DeployTarget


@dataclass(frozen=True)
class Services:
    uow: Callable[[], UnitOfWork]
    git: Callable[[str], GitRepository]  # project source (path or URL) -> repository
    artifacts: ArtifactStore
    builder: Builder
    clock: Clock
    logs_dir: Path
    targets: Callable[[str], DeployTarget]  # target kind ("local", "command") -> target
    state_dir: Path  # where targets keep per-environment state
    routers: Callable[[str], TrafficRouter]  # router kind ("haproxy") -> router
    counters: Callable[[str], RouterCounters]  # router kind -> what its proxy counted
    # a candidate's `prometheus:` settings (None: the server's default) -> provider
    metrics: Callable[[Mapping[str, Any] | None], MetricProvider]
    secrets: SecretCipher  # seals and opens secrets with the server's key (outside the database)
    work_dir: Path  # deployed code's own files (unpacked candidates), readable by its user
    # router kind -> the program it needs and this server lacks (None: nothing missing)
    router_binary: Callable[[str], MissingBinary | None] = lambda kind: None
