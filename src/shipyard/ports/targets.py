"""The deploy-target port: put a candidate's artifacts into an environment and report what runs.

A target never chooses *what* to deploy (the services and the engine do); it makes one
environment run one candidate, verifying every artifact's digest first, and reports health.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from shipyard.domain.deployments import DeploymentMode

DeployMode = DeploymentMode  # one vocabulary: the domain's deploy | promote | rollback


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    name: str
    digest: str  # "sha256:<hex>": what the candidate's record says the bytes must hash to
    path: Path  # where the bytes are on this machine (the artifact store)


@dataclass(frozen=True, slots=True)
class DeploySpec:
    project: str
    environment: str
    candidate: str
    version: str
    sha: str
    mode: DeployMode
    from_candidate: str | None  # what runs there now, if anything
    artifacts: tuple[ArtifactFile, ...]
    settings: Mapping[
        str, Any
    ]  # the environment's `target:` block from shipyard.yaml, minus `kind`
    state_dir: Path  # a directory the target owns for this environment (unpacked files, pids, logs)
    # what the environment gives its processes: its `env:` from shipyard.yaml and its secrets
    env: Mapping[str, str] = field(default_factory=dict)
    run_as: str | None = None  # the user its processes run as (None: the server's default)
    # where the deployed code's own files go, readable by run_as (outside the 0700 data dir);
    # None: inside state_dir
    work_dir: Path | None = None


class Identity(StrEnum):
    """How the target knows which candidate an instance runs: status asserts only what it read."""

    VERIFIED = "verified"  # read from the live process, its health answer or an identify hook
    UNVERIFIED = "unverified"  # the target cannot tell: the candidate is what it last deployed


@dataclass(frozen=True, slots=True)
class Instance:
    candidate: str
    address: str  # "127.0.0.1:PORT" or whatever the target can reach it by
    pid: int | None = None
    healthy: bool = True
    identity: Identity = Identity.VERIFIED


@dataclass(frozen=True, slots=True)
class Deployed:
    candidate: str
    instances: tuple[Instance, ...]
    log: str = ""  # what the target printed, for the deployment record
    details: Mapping[str, Any] = field(default_factory=dict)


class DeployTarget(Protocol):
    """Raises IntegrityError(DIGEST_MISMATCH) before touching anything when bytes differ from the
    record, and AdapterError (TargetError) when the new version does not become healthy; in both
    cases what ran before keeps running."""

    kind: ClassVar[str]

    def deploy(self, spec: DeploySpec) -> Deployed:
        """Start the candidate beside what runs now and wait until healthy; do not stop the old."""

    def retire(self, spec: DeploySpec, candidate: str) -> None:
        """Stop a candidate's instances in this environment (after the new one is healthy)."""

    def running(self, project: str, environment: str, state_dir: Path) -> Sequence[Instance]:
        """What runs now (health and identity re-checked), so a restarted server can reconcile.

        Also resumes supervision of what it finds (a restarted server adopts, never reaps)."""

    def configured(self, settings: Mapping[str, Any]) -> int | None:
        """How many instances the environment's `target:` settings ask for; None when the
        target does not count instances (a command hook deploys wherever it deploys)."""

    def close(self) -> None:
        """Stop supervising (server shutdown); instances may keep running."""
