"""Typed errors raised by the core; faces map them to HTTP status or exit codes in one place.

ShipyardError(message, code, hint)
├── NotFoundError      unknown project, release, candidate, SHA, environment, token, artifact
├── ConflictError      cherry-pick conflict, already exists, immutable, lease lost, busy
├── InvalidError       bad input: config file (file, line, field), version, policy, request
├── RefusedError       a rule says no: gate closed, frozen, separation of duties, not on mainline
│   └── PermissionDenied   the caller's role does not allow it
├── AuthError          no or unknown token
├── IntegrityError     digest mismatch, broken audit chain
└── AdapterError       git, build, router, provider, target failures (raised ``from`` the cause)
    └── MissingToolError   a program an adapter runs is not installed (names it, how to install)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = [
    "AdapterError",
    "AuthError",
    "ConfigError",
    "ConflictError",
    "ErrorCode",
    "IntegrityError",
    "InvalidError",
    "MissingToolError",
    "NotFoundError",
    "PermissionDenied",
    "RefusedError",
    "ShipyardError",
]


class ErrorCode(StrEnum):
    """Stable machine-readable codes; part of the API contract, never renamed."""

    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "invalid"
    CONFIG_INVALID = "config_invalid"
    REFUSED = "refused"
    PERMISSION_DENIED = "permission_denied"
    UNAUTHENTICATED = "unauthenticated"
    INTEGRITY = "integrity"
    ADAPTER = "adapter_failed"
    # finer codes a client may branch on
    UNKNOWN_SHA = "unknown_sha"
    NOT_ON_MAINLINE = "not_on_mainline"
    VERSION_EXISTS = "version_exists"
    PICK_CONFLICT = "pick_conflict"
    ALREADY_PICKED = "already_picked"
    MISSING_PICK = "missing_pick"
    DIGEST_MISMATCH = "digest_mismatch"
    BUILD_FAILED = "build_failed"
    GATE_CLOSED = "gate_closed"
    FROZEN = "frozen"
    SEPARATION_OF_DUTIES = "separation_of_duties"
    VETOED = "vetoed"
    INVALID_TRANSITION = "invalid_transition"
    LEASE_LOST = "lease_lost"
    DEPLOYMENT_FAILED = "deployment_failed"
    ROLLED_BACK = "rolled_back"  # a rollout that ended on the stable version (analysis or abort)


class ShipyardError(Exception):
    """Base of every error a user can cause or meet; carries a readable message and a code."""

    default_code: ErrorCode = ErrorCode.INVALID

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.hint = hint
        self.details: dict[str, Any] = details or {}


class NotFoundError(ShipyardError):
    default_code = ErrorCode.NOT_FOUND


class ConflictError(ShipyardError):
    default_code = ErrorCode.CONFLICT


class InvalidError(ShipyardError):
    default_code = ErrorCode.INVALID


class ConfigError(InvalidError):
    """A configuration file is wrong; names the file, line and field so the user can fix it."""

    default_code = ErrorCode.CONFIG_INVALID

    def __init__(self, file: str, line: int | None, field: str, reason: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(
            f"{where}: {field}: {reason}",
            details={"file": file, "line": line, "field": field, "reason": reason},
        )
        self.file = file
        self.line = line
        self.field = field
        self.reason = reason


class RefusedError(ShipyardError):
    default_code = ErrorCode.REFUSED


class PermissionDenied(RefusedError):
    default_code = ErrorCode.PERMISSION_DENIED


class AuthError(ShipyardError):
    default_code = ErrorCode.UNAUTHENTICATED


class IntegrityError(ShipyardError):
    default_code = ErrorCode.INTEGRITY


class AdapterError(ShipyardError):
    default_code = ErrorCode.ADAPTER


class MissingToolError(AdapterError):
    """A program an adapter runs (``haproxy``) is not on PATH; the hint says how to install it."""

    def __init__(self, tool: str, needed_by: str, install: str) -> None:
        super().__init__(
            f"{tool} is not installed (needed by {needed_by}); install it: {install}",
            hint=install,
            details={"tool": tool, "needed_by": needed_by, "install": install},
        )
        self.tool = tool
        self.install = install


class NoInstanceError(AdapterError):
    """A version the route names has no running instance (a rollout records it as a fault)."""
