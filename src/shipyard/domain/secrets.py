"""What an environment may hand its processes: variable names and values, and their bounds.

One rule for ``env:`` in shipyard.yaml and for secrets, so a name that passes one passes the
other. ``SHIPYARD_*`` is reserved: those variables describe the deployment and Shipyard sets them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from shipyard.errors import InvalidError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
RESERVED_PREFIX = "SHIPYARD_"
ENVIRONMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # as shipyard.yaml names them
MAX_VALUE = 32_768  # characters of one value (env:) or bytes (a secret)
MAX_VARIABLES = 200  # per environment, env: and secrets each


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a variable a user sets, or None."""
    if not NAME.fullmatch(name):
        return f"{name!r} is not an identifier (letters, digits and _, at most 128)"
    if name.upper().startswith(RESERVED_PREFIX):
        return f"{name!r}: SHIPYARD_* names are reserved for the deployment's own variables"
    return None


def check_name(name: str, what: str = "variable") -> str:
    problem = name_problem(name)
    if problem is not None:
        raise InvalidError(f"{what} name {problem}")
    return name


def value_problem(value: str) -> str | None:
    if "\0" in value:
        return "a value cannot hold a NUL byte"
    if len(value.encode()) > MAX_VALUE:
        return f"a value is at most {MAX_VALUE} bytes"
    return None


def secret_context(project: str, environment: str, name: str) -> bytes:
    """The associated data a secret is sealed with: its ciphertext opens only in its own place."""
    return "\0".join(("shipyard-secret-v1", project, environment, name)).encode()


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What anyone may know about a secret: never its value."""

    name: str
    set_by: str
    set_at: datetime
