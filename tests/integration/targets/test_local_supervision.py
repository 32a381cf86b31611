"""What a local target keeps running, and what it says runs, after a rollout ends: real processes.

Regressions of issue 13: after an automatic canary rollback (the canary retired, the stable left
running) a killed stable instance never came back, and a restarted server did not watch it."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.adapters.targets.local import LocalTarget
from shipyard.ports.targets import Identity
from tests.integration.targets.conftest import get, spec_for
from tests.integration.targets.test_local import wait_for

Make = Callable[..., Path]


def _back(target: LocalTarget, state_dir: Path, address: str, old_pid: int) -> Callable[[], bool]:
    def check() -> bool:
        now = target.running("shop", "staging", state_dir)
        return any(i.address == address and i.pid != old_pid and i.healthy for i in now)

    return check


def _canary_rolled_back(local: LocalTarget, state_dir: Path, artifacts: Make) -> Any:
    """Stable c1 (2 instances), canary c2 beside it, then c2 retired as an abort does."""
    stable = local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0"), settings={"instances": 2}))
    canary = spec_for(
        state_dir,
        "c2",
        artifacts("1.1.0"),
        version="1.1.0",
        from_candidate="c1",
        settings={"instances": 2},
    )
    local.deploy(canary)
    local.retire(canary, "c2")
    return stable


def test_killed_stable_instance_comes_back_after_a_canary_rollback(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    stable = _canary_rolled_back(local, state_dir, artifacts)
    victim = stable.instances[0]
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)

    wait_for(_back(local, state_dir, victim.address, victim.pid), 10)
    running = local.running("shop", "staging", state_dir)
    assert sorted(i.candidate for i in running) == ["c1", "c1"]
    assert all(i.healthy for i in running)
    assert get(victim.address)["candidate"] == "c1"
    assert json.loads((state_dir / "instances.json").read_text())["current"] == "c1"


def test_restarted_server_adopts_the_stable_after_a_canary_rollback(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    stable = _canary_rolled_back(local, state_dir, artifacts)
    local.close()  # the server stops; its instances keep serving

    restarted = LocalTarget()
    try:
        found = restarted.running("shop", "staging", state_dir)  # never reaped: still both
        assert sorted(i.pid or 0 for i in found) == sorted(i.pid or 0 for i in stable.instances)
        victim = stable.instances[1]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        wait_for(_back(restarted, state_dir, victim.address, victim.pid), 10)
    finally:
        restarted.close()


def test_a_canary_instance_killed_mid_rollout_comes_back(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    """Both versions are supervised while both run (not only the last one deployed)."""
    local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0")))
    [canary] = local.deploy(
        spec_for(state_dir, "c2", artifacts("1.1.0"), version="1.1.0", from_candidate="c1")
    ).instances
    [stable] = [i for i in local.running("shop", "staging", state_dir) if i.candidate == "c1"]
    assert canary.pid is not None and stable.pid is not None
    os.kill(stable.pid, signal.SIGKILL)
    os.kill(canary.pid, signal.SIGKILL)

    wait_for(_back(local, state_dir, stable.address, stable.pid), 10)
    wait_for(_back(local, state_dir, canary.address, canary.pid), 10)
    assert get(stable.address)["candidate"] == "c1"
    assert get(canary.address)["candidate"] == "c2"


def test_running_names_the_candidate_the_live_process_was_started_with(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    """Status reads the process, not the state file: a record that lies is not repeated."""
    [inst] = local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0"))).instances
    state = json.loads((state_dir / "instances.json").read_text())
    state["instances"][0]["candidate"] = "c9"  # a stale or wrong record
    (state_dir / "instances.json").write_text(json.dumps(state))

    [seen] = local.running("shop", "staging", state_dir)

    assert seen.candidate == "c1" and seen.identity is Identity.VERIFIED
    assert seen.address == inst.address


def test_configured_counts_the_instances_setting(local: LocalTarget) -> None:
    assert local.configured({"instances": 2}) == 2
    assert local.configured({}) == 1
