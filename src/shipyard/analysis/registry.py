"""Look a judge up by the name a policy check gives (``judge: sequential``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shipyard.analysis.mannwhitney import MannWhitneyConfig, MannWhitneyJudge
from shipyard.analysis.samples import Judge
from shipyard.analysis.sequential import SequentialConfig, SequentialJudge
from shipyard.analysis.threshold import ThresholdConfig, ThresholdJudge
from shipyard.errors import InvalidError

__all__ = ["DEFAULT_JUDGE", "JUDGES", "make_judge"]

DEFAULT_JUDGE = "sequential"


def _sequential(options: Mapping[str, Any]) -> Judge:
    return SequentialJudge(SequentialConfig(**options))


def _mann_whitney(options: Mapping[str, Any]) -> Judge:
    return MannWhitneyJudge(MannWhitneyConfig(**options))


def _threshold(options: Mapping[str, Any]) -> Judge:
    return ThresholdJudge(ThresholdConfig(**options))


JUDGES: dict[str, Callable[[Mapping[str, Any]], Judge]] = {
    "sequential": _sequential,
    "mann_whitney": _mann_whitney,
    "threshold": _threshold,
}


def make_judge(name: str | None = None, options: Mapping[str, Any] | None = None) -> Judge:
    """Build a judge; unknown names or fields become InvalidError so config errors read well."""
    key = name or DEFAULT_JUDGE
    factory = JUDGES.get(key)
    if factory is None:
        raise InvalidError(
            f"unknown judge {key!r}", hint=f"use one of: {', '.join(sorted(JUDGES))}"
        )
    try:
        return factory(dict(options or {}))
    except TypeError as exc:
        raise InvalidError(f"bad options for judge {key!r}: {exc}") from exc
