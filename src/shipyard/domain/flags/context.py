"""Reading fields from an Unleash-shaped evaluation context.

A context is a mapping with the standard top-level keys (``userId``, ``sessionId``,
``remoteAddress``, ``environment``, ``appName``, ``currentTime``) and everything else under
``properties``. Getters are resolved once per constraint at compile time, not per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["STANDARD_FIELDS", "Context", "Getter", "as_text", "field_getter"]

Context = Mapping[str, Any]
Getter = Callable[[Context], "str | None"]

STANDARD_FIELDS = frozenset(
    {"userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime"}
)


def as_text(value: object) -> str | None:
    """Normalise a context value to the string Unleash compares; ``None`` means absent."""
    if value is None or value.__class__ is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def field_getter(name: str) -> Getter:
    """Return a fast accessor for ``name``: top level for standard fields, else ``properties``."""
    if name in STANDARD_FIELDS:

        def get_standard(ctx: Context) -> str | None:
            value = ctx.get(name)
            if value is None or value.__class__ is str:
                return value
            return as_text(value)

        return get_standard

    def get_property(ctx: Context) -> str | None:
        props = ctx.get("properties")
        if not props:
            return None
        value = props.get(name)
        if value is None or value.__class__ is str:
            return value
        return as_text(value)

    return get_property
