"""The matrix and chart view models: pure functions over what the services return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shipyard.domain.deployments import Deployment, DeploymentMode, DeploymentState
from shipyard.domain.releases import Candidate, CandidateStatus, Release
from shipyard.services.deployments import Placement
from shipyard.web.views import build_matrix, daily_chart

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def candidate(n: int) -> Candidate:
    return Candidate(
        id=n,
        release_id=1,
        name=f"1.0.0-rc.{n}",
        number=n,
        sha=f"{n:040x}",
        status=CandidateStatus.BUILT,
        created_by="ada",
        created_at=T0 + timedelta(minutes=n),
        config_text="",
    )


def deployment(
    i: int, cand: int, env: str, state: DeploymentState, days_ago: int = 0
) -> Deployment:
    return Deployment(
        id=i,
        project="shop",
        environment=env,
        candidate=f"1.0.0-rc.{cand}",
        mode=DeploymentMode.DEPLOY,
        state=state,
        requested_by="ada",
        requested_at=T0 - timedelta(days=days_ago),
    )


RELEASE = Release(1, 1, "1.0.0", "release/1.0.0", "a" * 40, "ada", T0)
S, W, F = DeploymentState.SUCCEEDED, DeploymentState.AWAITING_APPROVAL, DeploymentState.FAILED


def test_matrix_rows_are_newest_first_with_the_latest_deployment_per_cell() -> None:
    history = [  # newest first, as the services return it
        deployment(4, 3, "production", W),
        deployment(3, 3, "staging", S),
        deployment(2, 2, "staging", F),
        deployment(1, 1, "staging", S),
    ]
    placements = [
        Placement("staging", "1.0.0-rc.3", T0, "ada", [], None),
        Placement("production", None, None, None, [history[0]], "2026-11-23T08:00:00+00:00"),
    ]
    m = build_matrix(placements, [(RELEASE, [candidate(1), candidate(2), candidate(3)])], history)
    assert [r.candidate.name for r in m.rows] == ["1.0.0-rc.3", "1.0.0-rc.2", "1.0.0-rc.1"]
    rc3 = m.rows[0].cells
    assert rc3[0].live and rc3[0].deployment is not None and rc3[0].deployment.id == 3
    assert rc3[1].waiting and not rc3[1].live
    assert not m.rows[1].cells[0].live and m.rows[1].cells[1].deployment is None
    assert [d.id for d in m.waiting] == [4]
    assert m.hidden == 0


def test_old_candidates_are_hidden_unless_live_or_in_flight() -> None:
    cands = [candidate(n) for n in range(1, 6)]
    history = [deployment(1, 1, "staging", S)]
    placements = [Placement("staging", "1.0.0-rc.1", T0, "ada", [], None)]
    m = build_matrix(placements, [(RELEASE, cands)], history, limit=2)
    assert [r.candidate.name for r in m.rows] == ["1.0.0-rc.5", "1.0.0-rc.4", "1.0.0-rc.1"]
    assert m.hidden == 2


def test_daily_chart_counts_by_outcome_and_scales_to_the_busiest_day() -> None:
    history = [
        deployment(1, 1, "staging", S, days_ago=0),
        deployment(2, 1, "staging", S, days_ago=0),
        deployment(3, 1, "staging", F, days_ago=0),
        deployment(4, 1, "staging", DeploymentState.CANCELED, days_ago=2),
        deployment(5, 1, "staging", S, days_ago=30),  # outside the window
    ]
    chart = daily_chart(history, T0, days=7)
    assert len(chart.bars) == 7 and chart.bars[-1].day == T0.date()
    today = chart.bars[-1]
    assert (today.succeeded, today.failed, today.other) == (2, 1, 0)
    assert (chart.bars[-3].other, chart.bars[-3].total) == (1, 1)
    assert sum(b.total for b in chart.bars) == 4
    assert chart.peak == 3 and chart.y(3) == chart.height - 16 and chart.y(0) == 0
    assert daily_chart([], T0).peak == 0 and daily_chart([], T0).y(5) == 0
