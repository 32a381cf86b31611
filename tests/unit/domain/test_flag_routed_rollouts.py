"""The rollout core for ``router: flag`` policies: the share of users the flag should carry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shipyard.domain.rollouts import (
    Phase,
    PolicySpec,
    SetWeight,
    abort,
    decide,
    finish,
    flag_percent,
    start,
)
from tests.unit.domain.test_rollouts import ERRORS, T0, Traffic, analysis, rollout, tick, weight

FLAGGED = PolicySpec(
    "dark",
    steps=(weight(0.1), analysis(ERRORS, duration_s=20.0), weight(5)),
    router="flag",
    flag="new-checkout",
)


@pytest.mark.parametrize("stable", [None, "1.4.0-rc.1"])
def test_a_flag_rollout_runs_its_steps_even_for_a_first_version(stable: str | None) -> None:
    """The flag's off users are the comparison: there is always something to judge against."""
    d = start(rollout(policy=FLAGGED, stable=stable), T0)
    assert d.rollout.phase is Phase.PROGRESSING
    assert d.records[0].message.endswith("moving flag new-checkout")
    assert flag_percent(d.rollout) == 0.0
    assert flag_percent(decide(d.rollout, T0).rollout) == 0.1


def test_promoted_means_everyone_and_aborted_means_nobody() -> None:
    r = start(rollout(policy=FLAGGED, stable=None), T0).rollout
    r = decide(r, T0).rollout
    traffic = Traffic()
    for s in (0, 10, 20):
        r = tick(r, T0 + timedelta(seconds=s), traffic).rollout
    assert (r.phase, flag_percent(r)) == (Phase.PROMOTING, 100.0)

    other = decide(start(rollout(policy=FLAGGED, stable=None), T0).rollout, T0).rollout
    aborted = abort(other, user="ada", now=T0).rollout  # allowed without a stable version
    assert (aborted.phase, flag_percent(aborted)) == (Phase.ABORTING, 0.0)


def test_a_haproxy_policy_is_not_flag_routed() -> None:
    assert not PolicySpec("p", steps=(SetWeight(weight=5),)).flag_routed
    assert not PolicySpec("p", router="flag").flag_routed  # no flag named: nothing to move


def test_the_outcome_says_what_happened_to_the_flag_not_to_traffic() -> None:
    """The code stays deployed either way; only the feature's audience changed."""
    r = decide(start(rollout(policy=FLAGGED, stable=None), T0).rollout, T0).rollout
    traffic = Traffic()
    for s in (0, 10, 20):
        r = tick(r, T0 + timedelta(seconds=s), traffic).rollout
    promoted = finish(r, T0 + timedelta(seconds=21)).records[-1]
    assert (promoted.kind, promoted.message) == (
        "promoted",
        f"flag new-checkout on for 100% of users of {r.canary}",
    )

    other = decide(start(rollout(policy=FLAGGED, stable=None), T0).rollout, T0).rollout
    aborted = abort(other, user="ada", now=T0).rollout
    back = finish(aborted, T0).records[-1]
    assert (back.kind, back.message) == (
        "rolled_back",
        f"flag new-checkout off for everyone; {other.canary} keeps running dark",
    )
    assert "None" not in back.message
