"""Canary analysis: pure judges comparing canary with baseline (no I/O, no clock)."""

from shipyard.analysis.mannwhitney import MannWhitneyConfig, MannWhitneyJudge, rank_sum_interval
from shipyard.analysis.registry import DEFAULT_JUDGE, JUDGES, make_judge
from shipyard.analysis.samples import (
    ArmSlice,
    Direction,
    Evidence,
    Judge,
    Judgement,
    Metric,
    RateDifference,
    Slice,
    Verdict,
)
from shipyard.analysis.sequential import SequentialConfig, SequentialJudge
from shipyard.analysis.threshold import ThresholdConfig, ThresholdJudge

__all__ = [
    "DEFAULT_JUDGE",
    "JUDGES",
    "ArmSlice",
    "Direction",
    "Evidence",
    "Judge",
    "Judgement",
    "MannWhitneyConfig",
    "MannWhitneyJudge",
    "Metric",
    "RateDifference",
    "SequentialConfig",
    "SequentialJudge",
    "Slice",
    "ThresholdConfig",
    "ThresholdJudge",
    "Verdict",
    "make_judge",
    "rank_sum_interval",
]
