"""CommandTarget: user commands run by /bin/sh with the deploy described in SHIPYARD_* variables."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from shipyard.adapters.targets.command import CommandTarget
from shipyard.adapters.targets.local import _alive
from shipyard.errors import AdapterError, ErrorCode, IntegrityError, InvalidError
from shipyard.ports.targets import DeployMode, DeploySpec, Identity, Instance
from tests.integration.targets.conftest import spec_for
from tests.support.reachable import writable

Make = Callable[..., Path]

RECORD_ENV = """#!/bin/sh
# What a real deploy script would read, one NAME=value a line, plus where it ran.
for name in MODE FROM_CANDIDATE TO_CANDIDATE VERSION SHA ENVIRONMENT PROJECT ARTIFACTS \\
            ARTIFACT_APP_TAR_GZ_PATH ARTIFACT_APP_TAR_GZ_DIGEST; do
  eval "value=\\$SHIPYARD_$name"
  echo "$name=$value"
done > seen.env
echo "CWD=$(pwd)" >> seen.env
echo "deploying $SHIPYARD_TO_CANDIDATE"
"""


def command_spec(
    state_dir: Path,
    candidate: str,
    artifact: Path,
    settings: Mapping[str, Any],
    **kw: Any,
) -> DeploySpec:
    spec = spec_for(state_dir, candidate, artifact, **kw)
    return DeploySpec(**{**_fields(spec), "settings": dict(settings)})


def _fields(spec: DeploySpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in DeploySpec.__slots__}


def seen(state_dir: Path) -> dict[str, str]:
    text = (state_dir / "hooks" / "seen.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


def hook_sees(state_dir: Path, artifact: Path, digest: str) -> Path:
    """Where a hook finds an artifact: the store itself when it runs as the server, else a copy
    its (unprivileged) user can read."""
    if os.geteuid() != 0:
        return artifact
    return state_dir / "artifacts" / digest.removeprefix("sha256:") / artifact.name


def test_deploy_command_sees_the_deploy_in_its_environment(
    tmp_path: Path, state_dir: Path, artifacts: Make
) -> None:
    script = tmp_path / "deploy.sh"
    script.write_text(RECORD_ENV)
    artifact = artifacts("1.1.0")
    spec = command_spec(
        state_dir,
        "c2",
        artifact,
        {"deploy": f"sh {script}"},
        version="1.1.0",
        from_candidate="c1",
        mode=DeployMode.PROMOTE,
    )

    deployed = CommandTarget().deploy(spec)

    assert seen(state_dir) == {
        "MODE": "promote",
        "FROM_CANDIDATE": "c1",
        "TO_CANDIDATE": "c2",
        "VERSION": "1.1.0",
        "SHA": "0" * 40,
        "ENVIRONMENT": "staging",
        "PROJECT": "shop",
        "ARTIFACTS": str(hook_sees(state_dir, artifact, spec.artifacts[0].digest)),
        "ARTIFACT_APP_TAR_GZ_PATH": str(hook_sees(state_dir, artifact, spec.artifacts[0].digest)),
        "ARTIFACT_APP_TAR_GZ_DIGEST": spec.artifacts[0].digest,
        "CWD": str(state_dir / "hooks"),
    }
    assert deployed.candidate == "c2"
    assert deployed.log == "deploying c2\n"
    assert deployed.instances == (Instance("c2", "staging"),)


def test_first_deploy_has_an_empty_from_candidate(state_dir: Path, artifacts: Make) -> None:
    settings = {"deploy": 'echo "from=[$SHIPYARD_FROM_CANDIDATE] mode=$SHIPYARD_MODE"'}
    deployed = CommandTarget().deploy(command_spec(state_dir, "c1", artifacts("1.0.0"), settings))
    assert deployed.log == "from=[] mode=deploy\n"


@pytest.mark.parametrize(
    ("mode", "settings", "ran"),
    [
        (DeployMode.ROLLBACK, {"rollback": "echo rollback >> calls"}, "rollback"),
        (DeployMode.ROLLBACK, {}, "deploy"),  # no rollback command: the deploy command rolls back
        (DeployMode.ROLLBACK, {"rollback": ""}, "deploy"),
        (DeployMode.DEPLOY, {"rollback": "echo rollback >> calls"}, "deploy"),
        (DeployMode.PROMOTE, {"rollback": "echo rollback >> calls"}, "deploy"),
    ],
)
def test_rollback_uses_the_rollback_command_when_there_is_one(
    state_dir: Path, artifacts: Make, mode: DeployMode, settings: dict[str, str], ran: str
) -> None:
    spec = command_spec(
        state_dir,
        "c1",
        artifacts("1.0.0"),
        {"deploy": "echo deploy >> calls", **settings},
        mode=mode,
        from_candidate="c2",
    )
    CommandTarget().deploy(spec)
    assert (state_dir / "hooks" / "calls").read_text() == f"{ran}\n"


def test_failing_command_reports_its_status_and_last_lines(
    state_dir: Path, artifacts: Make
) -> None:
    target = CommandTarget()
    script = "echo one; echo two; echo three; echo four >&2; exit 3"
    spec = command_spec(state_dir, "c1", artifacts("1.0.0"), {"deploy": script})

    with pytest.raises(AdapterError) as err:
        target.deploy(spec)

    assert err.value.message == "deploy command exited with status 3: two | three | four"
    assert target.running("shop", "staging", state_dir) == []


def test_command_that_overruns_its_timeout_is_stopped_with_its_children(
    state_dir: Path, artifacts: Make
) -> None:
    """A hung deploy is stopped whole: no child of the command keeps running after the error."""
    child = "sh -c 'echo $$ > child.pid; exec sleep 30'"
    settings = {"deploy": f"echo started; {child}; echo never", "timeout": 0.5}
    spec = command_spec(state_dir, "c1", artifacts("1.0.0"), settings)
    began = time.monotonic()

    with pytest.raises(AdapterError, match=r"deploy command timed out after 0.5s: started"):
        CommandTarget().deploy(spec)

    assert time.monotonic() - began < 5
    pid = int((state_dir / "hooks" / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(pid):  # reparented to PID 1, which reaps slowly: a zombie counts as stopped
        assert time.monotonic() < deadline, f"sleep {pid} still runs"
        time.sleep(0.05)


def test_health_command_is_retried_until_it_passes(state_dir: Path, artifacts: Make) -> None:
    health = 'n=$(cat tries 2>/dev/null || echo 0); echo $((n + 1)) > tries; [ "$n" -ge 2 ]'
    settings = {"deploy": "true", "health": health, "health_timeout": 10}
    target = CommandTarget()

    target.deploy(command_spec(state_dir, "c1", artifacts("1.0.0"), settings))

    assert (state_dir / "hooks" / "tries").read_text() == "3\n"
    assert target.running("shop", "staging", state_dir) == [
        Instance("c1", "staging", identity=Identity.UNVERIFIED)
    ]


def test_health_command_that_never_passes_times_out(state_dir: Path, artifacts: Make) -> None:
    target = CommandTarget()
    target.deploy(command_spec(state_dir, "c1", artifacts("1.0.0"), {"deploy": "true"}))
    settings = {"deploy": "true", "health": "echo still starting; exit 1", "health_timeout": 1}
    began = time.monotonic()

    with pytest.raises(AdapterError) as err:
        target.deploy(command_spec(state_dir, "c2", artifacts("1.1.0"), settings))

    assert time.monotonic() - began < 4
    assert err.value.message == (
        "c2 did not become healthy within 1s: health command exited with status 1: still starting"
    )
    # running() reports the last candidate whose deploy passed its health check
    assert target.running("shop", "staging", state_dir) == [
        Instance("c1", "staging", identity=Identity.UNVERIFIED)
    ]


def test_running_reports_the_last_deployed_candidate(state_dir: Path, artifacts: Make) -> None:
    target = CommandTarget()
    assert target.running("shop", "staging", state_dir) == []

    target.deploy(command_spec(state_dir, "c1", artifacts("1.0.0"), {"deploy": "true"}))
    assert target.running("shop", "staging", state_dir) == [
        Instance("c1", "staging", identity=Identity.UNVERIFIED)
    ]

    spec2 = command_spec(
        state_dir, "c2", artifacts("1.1.0"), {"deploy": "true"}, from_candidate="c1"
    )
    target.deploy(spec2)
    target.retire(spec2, "c1")  # nothing to stop: the deploy command replaced c1
    assert CommandTarget().running("shop", "staging", state_dir) == [
        Instance("c2", "staging", identity=Identity.UNVERIFIED)
    ]


def test_altered_artifact_is_refused_before_the_command_runs(
    state_dir: Path, artifacts: Make
) -> None:
    path = artifacts("1.0.0")
    spec = command_spec(state_dir, "c1", path, {"deploy": "echo ran > ran"})
    path.write_bytes(path.read_bytes() + b"!")

    with pytest.raises(IntegrityError) as err:
        CommandTarget().deploy(spec)

    assert err.value.code is ErrorCode.DIGEST_MISMATCH
    assert not state_dir.exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "needs `deploy:`"),
        ({"deploy": ""}, "needs `deploy:`"),
        ({"deploy": "true", "timeout": "ten"}, "`timeout:` must be a number"),
    ],
)
def test_bad_settings_are_refused(
    state_dir: Path, artifacts: Make, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidError, match=message):
        CommandTarget().deploy(command_spec(state_dir, "c1", artifacts("1.0.0"), settings))


def test_identify_hook_names_what_runs_and_its_absence_says_unverified(
    state_dir: Path, artifacts: Make
) -> None:
    """A command target cannot be looked into: its `identify:` hook says what runs, and without
    one (or when it fails) the candidate last deployed is shown as unverified."""
    target = CommandTarget()
    live = writable(state_dir / "out") / "live"
    settings = {"deploy": f'echo "$SHIPYARD_TO_CANDIDATE" > {live}', "identify": f"cat {live}"}
    target.deploy(command_spec(state_dir, "c1", artifacts("1.0.0"), settings))
    assert target.running("shop", "staging", state_dir) == [Instance("c1", "staging")]

    live.write_text("c0\n")  # somebody deployed by hand behind Shipyard's back
    assert target.running("shop", "staging", state_dir) == [Instance("c0", "staging")]

    live.unlink()  # the hook fails: nothing is asserted
    assert target.running("shop", "staging", state_dir) == [
        Instance("c1", "staging", identity=Identity.UNVERIFIED)
    ]
    assert target.configured(settings) is None
