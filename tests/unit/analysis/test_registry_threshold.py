"""Registry lookups and Argo/Flagger threshold semantics."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard.analysis import (
    JUDGES,
    ArmSlice,
    MannWhitneyJudge,
    SequentialJudge,
    Slice,
    ThresholdConfig,
    ThresholdJudge,
    Verdict,
    make_judge,
)
from shipyard.analysis.threshold import first_failure
from shipyard.errors import InvalidError


def test_registry_names_and_default() -> None:
    assert set(JUDGES) == {"sequential", "mann_whitney", "threshold"}
    assert isinstance(make_judge(), SequentialJudge)
    assert isinstance(make_judge("mann_whitney", {"confidence_level": 0.99}), MannWhitneyJudge)
    judge = make_judge("threshold", {"max_error_rate": 0.05, "failure_limit": 0})
    assert isinstance(judge, ThresholdJudge) and judge.config.failure_limit == 0


def test_registry_rejects_unknown_names_and_fields() -> None:
    with pytest.raises(InvalidError, match="unknown judge"):
        make_judge("bayesian")
    with pytest.raises(InvalidError, match="bad options"):
        make_judge("sequential", {"alpah": 0.1})
    with pytest.raises(InvalidError):
        make_judge("sequential", {"alpha": 2.0})


def _minutes(rates: list[float]) -> list[Slice]:
    return [
        Slice(60.0 * i, 60.0, ArmSlice(1000, round(1000 * r)), ArmSlice(1000, 10))
        for i, r in enumerate(rates)
    ]


def test_threshold_fails_only_when_failures_exceed_limit() -> None:
    judge = ThresholdJudge(ThresholdConfig(max_error_rate=0.02, failure_limit=1))
    assert judge.judge(_minutes([0.03, 0.01, 0.01])).verdict is Verdict.CONTINUE
    failed = judge.judge(_minutes([0.03, 0.01, 0.05]))
    assert failed.verdict is Verdict.FAIL
    assert failed.evidence[0].statistic == 2 and failed.evidence[0].bound == 1
    assert judge.judge(_minutes([0.01, 0.01]), final=True).verdict is Verdict.PASS
    assert judge.judge([]).verdict is Verdict.NO_DATA


def test_threshold_waits_for_complete_intervals() -> None:
    judge = ThresholdJudge(
        ThresholdConfig(max_error_rate=0.02, failure_limit=0, interval_seconds=120)
    )
    one_minute = _minutes([0.5])
    assert judge.judge(one_minute).verdict is Verdict.CONTINUE
    assert judge.judge(one_minute, final=True).verdict is Verdict.FAIL


def test_first_failure_vectorised() -> None:
    failed = np.array([[True, False, True, True], [False, False, False, True]])
    assert first_failure(failed, 1).tolist() == [2, -1]
    assert first_failure(failed, 0).tolist() == [0, 3]
