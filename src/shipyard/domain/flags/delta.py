"""Applying Unleash delta-API events to a client-features state.

Kept separate from compilation: the SDK can fold a stream of events into the last full state
and recompile, and the conformance suite feeds its event fixtures through the same path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.errors import InvalidError

__all__ = ["apply_events"]


def apply_events(
    state: Mapping[str, Any] | None, events: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Return a new ``{version, features, segments}`` state with ``events`` applied in order."""
    base = state or {}
    features: dict[str, Any] = {f["name"]: f for f in base.get("features") or ()}
    segments: dict[Any, Any] = {s["id"]: s for s in base.get("segments") or ()}
    for event in events:
        kind = event.get("type")
        if kind == "hydration":
            features = {f["name"]: f for f in event.get("features") or ()}
            segments = {s["id"]: s for s in event.get("segments") or ()}
        elif kind == "feature-updated":
            feature = event["feature"]
            features[feature["name"]] = feature
        elif kind == "feature-removed":
            features.pop(str(event.get("featureName")), None)
        elif kind == "segment-updated":
            segment = event["segment"]
            segments[segment["id"]] = segment
        elif kind == "segment-removed":
            segments.pop(event.get("segmentId"), None)
        else:
            raise InvalidError(f"unknown flag delta event type {kind!r}")
    return {
        "version": base.get("version", 2),
        "features": list(features.values()),
        "segments": list(segments.values()),
    }
