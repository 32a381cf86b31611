"""What an evaluation returns: Unleash's variant shape plus an OpenFeature-style reason."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["DISABLED", "DISABLED_FEATURE_ON", "Evaluation", "Reason", "Variant"]


class Reason(StrEnum):
    """Why a flag resolved as it did; the SDK maps these onto OpenFeature reasons."""

    STATIC = "STATIC"  # enabled for everyone: no strategies, or an unconstrained default
    TARGETING_MATCH = "TARGETING_MATCH"  # a constrained/targeted strategy or an override matched
    SPLIT = "SPLIT"  # a percentage rollout or a weighted variant split decided
    DEFAULT = "DEFAULT"  # flag on, but no strategy matched this context
    DISABLED = "DISABLED"  # kill switch: the flag itself is off
    PREREQUISITE_FAILED = "PREREQUISITE_FAILED"  # a parent flag's requirement is not met


@dataclass(frozen=True, slots=True)
class Variant:
    """A resolved variant; instances are built once at compile time and shared across calls."""

    name: str
    enabled: bool
    feature_enabled: bool
    payload_type: str | None = None
    payload_value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The exact dict Unleash SDKs return from ``getVariant``."""
        out: dict[str, Any] = {"name": self.name}
        if self.payload_type is not None:
            out["payload"] = {"type": self.payload_type, "value": self.payload_value}
        out["enabled"] = self.enabled
        out["feature_enabled"] = self.feature_enabled
        return out


DISABLED = Variant("disabled", enabled=False, feature_enabled=False)
DISABLED_FEATURE_ON = Variant("disabled", enabled=False, feature_enabled=True)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Full outcome of one flag for one context: on/off, variant and the reason."""

    flag: str
    enabled: bool
    variant: Variant
    reason: Reason
