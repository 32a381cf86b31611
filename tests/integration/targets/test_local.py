"""LocalTarget with real processes: the sample service run from its artifact on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.adapters.targets import local as local_module
from shipyard.adapters.targets.local import LocalTarget
from shipyard.adapters.targets.verify import sha256_file
from shipyard.errors import AdapterError, ErrorCode, IntegrityError, InvalidError
from shipyard.ports.targets import ArtifactFile, DeploySpec, Instance
from tests.integration.targets.conftest import get, gone, pids_running_in, refused, spec_for
from tests.support.sample_service import PYTHON, START

Make = Callable[..., Path]


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(0.05)


def candidates(instances: Any) -> list[str]:
    return sorted(i.candidate for i in instances)


def test_deploy_starts_the_candidate_and_it_serves(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    deployed = local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0")))

    assert deployed.candidate == "c1"
    [inst] = deployed.instances
    assert inst.address.startswith("127.0.0.1:") and inst.pid is not None
    assert get(inst.address) == {"version": "1.0.0", "candidate": "c1", "artifact_version": "1.0.0"}
    assert "started 1 instance(s) of c1" in deployed.log
    assert local.running("shop", "staging", state_dir) == [
        Instance("c1", inst.address, inst.pid, healthy=True)
    ]


def test_new_version_starts_beside_the_old_which_retire_stops(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    [v1] = local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0"))).instances
    spec2 = spec_for(state_dir, "c2", artifacts("1.1.0"), version="1.1.0", from_candidate="c1")
    [v2] = local.deploy(spec2).instances

    assert get(v1.address)["version"] == "1.0.0"  # deploy never stops the old one
    assert get(v2.address)["version"] == "1.1.0"
    assert candidates(local.running("shop", "staging", state_dir)) == ["c1", "c2"]

    local.retire(spec2, "c1")

    assert v1.pid is not None and gone(v1.pid)
    assert refused(v1.address)
    assert get(v2.address) == {"version": "1.1.0", "candidate": "c2", "artifact_version": "1.1.0"}
    assert candidates(local.running("shop", "staging", state_dir)) == ["c2"]
    assert not (state_dir / "c1").exists()


def test_altered_artifact_is_refused_before_anything_starts(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    [v1] = local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0"))).instances
    before = local.running("shop", "staging", state_dir)
    path = artifacts("1.1.0")
    spec2 = spec_for(state_dir, "c2", path, from_candidate="c1")  # digest recorded here
    with path.open("ab") as fh:
        fh.write(b"tampered")

    with pytest.raises(IntegrityError) as err:
        local.deploy(spec2)

    assert err.value.code is ErrorCode.DIGEST_MISMATCH
    assert "c1 keeps serving" in err.value.message
    assert local.running("shop", "staging", state_dir) == before
    assert not (state_dir / "c2").exists()
    assert not list(state_dir.glob("c2.*.log"))
    assert get(v1.address)["candidate"] == "c1"


def test_unhealthy_version_is_stopped_and_the_old_keeps_serving(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    [v1] = local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0"))).instances
    spec2 = spec_for(
        state_dir,
        "c2",
        artifacts("1.1.0", unhealthy=True),
        from_candidate="c1",
        settings={"health_timeout": 1, "instances": 2},
    )

    with pytest.raises(AdapterError) as err:
        local.deploy(spec2)

    assert err.value.message.startswith("c2 did not become healthy on /healthz within 1s: http://")
    assert err.value.message.endswith("/healthz answered 503; c1 keeps serving")

    assert len(list(state_dir.glob("c2.*.log"))) == 2  # both instances did start
    assert pids_running_in(state_dir / "c2") == []
    assert not (state_dir / "c2").exists()
    assert candidates(local.running("shop", "staging", state_dir)) == ["c1"]
    assert get(v1.address)["candidate"] == "c1"


def test_version_that_exits_at_once_is_reported(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    spec = spec_for(state_dir, "c1", artifacts("1.0.0"), settings={"start": "sh -c 'exit 7'"})
    with pytest.raises(AdapterError, match="c1 exited with status 7 before it was healthy"):
        local.deploy(spec)
    assert local.running("shop", "staging", state_dir) == []


def test_two_instances_on_their_own_ports(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    deployed = local.deploy(
        spec_for(state_dir, "c1", artifacts("1.0.0"), settings={"instances": 2})
    )

    addresses = {i.address for i in deployed.instances}
    assert len(addresses) == 2
    assert all(get(a)["candidate"] == "c1" for a in addresses)
    running = local.running("shop", "staging", state_dir)
    assert {i.address for i in running} == addresses and all(i.healthy for i in running)


def test_redeploying_the_running_candidate_replaces_its_instances(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    """Retrying a deploy of what runs must neither orphan the old processes nor delete their files."""
    path = artifacts("1.0.0")
    [first] = local.deploy(spec_for(state_dir, "c1", path)).instances
    [second] = local.deploy(spec_for(state_dir, "c1", path, from_candidate="c1")).instances

    assert first.pid is not None and gone(first.pid)
    assert get(second.address)["candidate"] == "c1"
    assert local.running("shop", "staging", state_dir) == [
        Instance("c1", second.address, second.pid, healthy=True)
    ]
    assert len(list((state_dir / "c1").iterdir())) == 1  # the first unpacked copy is gone


def test_supervisor_restarts_a_killed_instance_of_the_current_candidate(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    [v1] = local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0"))).instances
    assert v1.pid is not None
    os.kill(v1.pid, signal.SIGKILL)

    [again] = wait_for(
        lambda: [i for i in local.running("shop", "staging", state_dir) if i.healthy], 10
    )

    assert again.address == v1.address and again.pid != v1.pid
    assert get(v1.address)["candidate"] == "c1"


def test_supervisor_leaves_a_retired_candidate_alone(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    spec = spec_for(state_dir, "c1", artifacts("1.0.0"))
    [v1] = local.deploy(spec).instances
    local.retire(spec, "c1")
    time.sleep(0.6)  # three supervision rounds

    assert local.running("shop", "staging", state_dir) == []
    assert refused(v1.address)


def test_a_new_target_instance_finds_what_runs_and_supervises_it(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    """A restarted server builds a new LocalTarget: the state file tells it what runs, and once
    it has asked, it restarts a dead instance like the one that deployed it would have."""
    deployed = local.deploy(
        spec_for(state_dir, "c1", artifacts("1.0.0"), settings={"instances": 2})
    )
    local.close()

    restarted = LocalTarget()
    try:
        found = restarted.running("shop", "staging", state_dir)
        assert sorted(found, key=lambda i: i.address) == sorted(
            deployed.instances, key=lambda i: i.address
        )
        dead, alive = deployed.instances
        assert dead.pid is not None and alive.pid is not None
        os.kill(dead.pid, signal.SIGKILL)  # nobody reaps it: a zombie must still count as dead

        def replaced() -> bool:
            now = restarted.running("shop", "staging", state_dir)
            return any(i.address == dead.address and i.pid != dead.pid and i.healthy for i in now)

        wait_for(replaced, 10)
        assert alive in restarted.running("shop", "staging", state_dir)
        assert get(dead.address)["candidate"] == "c1"

        restarted.retire(spec_for(state_dir, "c2", artifacts("1.1.0")), "c1")
        assert gone(alive.pid)
        assert restarted.running("shop", "staging", state_dir) == []
        assert pids_running_in(state_dir) == []
    finally:
        restarted.close()


def test_close_stops_the_supervisor(local: LocalTarget, state_dir: Path, artifacts: Make) -> None:
    [v1] = local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0"))).instances
    local.close()

    assert not local._thread.is_alive()
    assert get(v1.address)["candidate"] == "c1"  # instances keep running after close
    assert v1.pid is not None
    os.kill(v1.pid, signal.SIGKILL)
    time.sleep(0.6)
    assert local.running("shop", "staging", state_dir) == []  # nobody restarted it


# -- unsafe archives ------------------------------------------------------------------------------
def _tar(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _zip(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo(name), b"x")
    return path


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda d: _tar(d / "app.tar.gz", tarfile.TarInfo("../evil.txt")), id="tar-dotdot"
        ),
        pytest.param(
            lambda d: _tar(d / "app.tar.gz", tarfile.TarInfo("/tmp/evil.txt")), id="tar-absolute"
        ),
        pytest.param(
            lambda d: _tar(d / "app.tgz", tarfile.TarInfo("a/../../evil.txt")),
            id="tgz-nested-dotdot",
        ),
        pytest.param(
            lambda d: _tar(d / "app.tar", _symlink("link", "/etc/passwd")), id="tar-symlink-out"
        ),
        pytest.param(lambda d: _zip(d / "app.zip", "../evil.txt"), id="zip-dotdot"),
        pytest.param(lambda d: _zip(d / "app.zip", "/tmp/evil.txt"), id="zip-absolute"),
    ],
)
def test_unsafe_archive_paths_are_refused(
    local: LocalTarget, state_dir: Path, tmp_path: Path, build: Callable[[Path], Path]
) -> None:
    (tmp_path / "bad").mkdir()
    archive = build(tmp_path / "bad")

    with pytest.raises(InvalidError, match=r"unsafe path|cannot be unpacked"):
        local.deploy(spec_for(state_dir, "c1", archive))

    assert not (state_dir / "evil.txt").exists() and not (state_dir / "c1" / "evil.txt").exists()
    assert not (state_dir / "c1").exists() or not any((state_dir / "c1").iterdir())
    assert local.running("shop", "staging", state_dir) == []


def test_bad_settings_are_refused_before_anything_happens(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    path = artifacts("1.0.0")
    with pytest.raises(InvalidError, match="needs `start:`"):
        local.deploy(spec_for(state_dir, "c1", path, settings={"start": ""}))
    with pytest.raises(InvalidError, match="at least 1"):
        local.deploy(spec_for(state_dir, "c1", path, settings={"instances": 0}))
    with pytest.raises(InvalidError, match="must be a number"):
        local.deploy(spec_for(state_dir, "c1", path, settings={"health_timeout": "soon"}))
    with pytest.raises(InvalidError, match="`health:` must be a path such as /healthz"):
        local.deploy(spec_for(state_dir, "c1", path, settings={"health": "healthz"}))
    assert not state_dir.exists()


def test_the_artifact_setting_picks_which_artifact_to_unpack(
    local: LocalTarget, state_dir: Path, artifacts: Make, tmp_path: Path
) -> None:
    app = artifacts("1.0.0")
    notes = tmp_path / "NOTES.txt"
    notes.write_text("release notes")
    two = spec_for(state_dir, "c1", app, settings={"artifact": "app.tar.gz"})
    two = DeploySpec(
        **{
            **{n: getattr(two, n) for n in DeploySpec.__slots__},
            "artifacts": (*two.artifacts, ArtifactFile("NOTES.txt", sha256_file(notes), notes)),
        }
    )

    [v1] = local.deploy(two).instances

    assert get(v1.address)["candidate"] == "c1"
    [workdir] = (state_dir / "c1").iterdir()
    assert sorted(p.name for p in workdir.iterdir()) == ["sample.json", "sample_service.py"]

    bad = DeploySpec(
        **{
            **{n: getattr(two, n) for n in DeploySpec.__slots__},
            "candidate": "c2",
            "settings": {**two.settings, "artifact": "web.zip"},
        }
    )
    with pytest.raises(
        InvalidError,
        match=r"`artifact: web.zip` is not an artifact of c2 \(it has: app.tar.gz, NOTES.txt\)",
    ):
        local.deploy(bad)


def test_a_crash_looping_instance_is_restarted_with_growing_pauses(
    monkeypatch: pytest.MonkeyPatch, local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    monkeypatch.setattr(local_module, "BACKOFF_FIRST", 0.6)
    # healthy long enough to deploy, then it exits; every restart exits again at once
    start = f"if [ -e started ]; then exit 1; fi; touch started; exec {START}"
    [v1] = local.deploy(
        spec_for(state_dir, "c1", artifacts("1.0.0"), settings={"start": start})
    ).instances
    assert v1.pid is not None
    os.kill(v1.pid, signal.SIGKILL)
    time.sleep(2.3)  # supervision every 0.2 s: restarts at ~0.2, then ~0.8, then ~2.0

    restarts = json.loads((state_dir / "instances.json").read_text())["instances"][0]["restarts"]
    assert 2 <= restarts <= 4  # without backoff it would be ~11


def test_backoff_doubles_up_to_its_ceiling() -> None:
    assert [local_module._backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert local_module._backoff(50) == local_module.BACKOFF_MAX


def test_health_checks_ignore_an_http_proxy_in_the_environment(
    local: LocalTarget, state_dir: Path, artifacts: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Instances listen on 127.0.0.1: a corporate proxy setting must not route checks away."""
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # discard port: nothing listens
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    spec = spec_for(state_dir, "c1", artifacts("1.0.0"), settings={"health_timeout": 2})

    [inst] = local.deploy(spec).instances

    assert local.running("shop", "staging", state_dir)[0].healthy
    monkeypatch.delenv("http_proxy")
    monkeypatch.delenv("HTTP_PROXY")
    assert get(inst.address)["candidate"] == "c1"


def test_a_port_that_does_not_speak_http_is_not_healthy(
    local: LocalTarget, state_dir: Path, artifacts: Make, tmp_path: Path
) -> None:
    """Garbage on the health port is an unhealthy version, not a crash of the deploy."""
    junk = tmp_path / "junk.py"
    junk.write_text(JUNK_SERVER)
    settings = {"start": f"{PYTHON} {junk}", "health_timeout": 1}
    spec = spec_for(state_dir, "c1", artifacts("1.0.0"), settings=settings)

    with pytest.raises(AdapterError, match="c1 did not become healthy"):
        local.deploy(spec)


JUNK_SERVER = """
import os, socket
server = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
while True:
    conn, _ = server.accept()
    conn.recv(1024)
    conn.sendall(b"garbage\\r\\n\\r\\n")
    conn.close()
"""


def test_a_recorded_pid_now_used_by_another_process_is_neither_reported_nor_stopped(
    local: LocalTarget, state_dir: Path, artifacts: Make
) -> None:
    """After a reboot the state file's pids may name unrelated processes (even group leaders)."""
    local.deploy(spec_for(state_dir, "c1", artifacts("1.0.0")))
    state = json.loads((state_dir / "instances.json").read_text())
    assert state["instances"][0]["started"]  # each pid is recorded with its start time
    local.stop_all(state_dir)

    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        state["instances"][0]["pid"] = stranger.pid  # same number, another process
        (state_dir / "instances.json").write_text(json.dumps(state))
        rebooted = LocalTarget()
        try:
            assert rebooted.running("shop", "staging", state_dir) == []
            rebooted.stop_all(state_dir)
            assert stranger.poll() is None
        finally:
            rebooted.close()
    finally:
        stranger.terminate()
        stranger.wait(5)


def test_artifacts_are_unpacked_by_their_recorded_name_not_their_store_path(
    local: LocalTarget, state_dir: Path, artifacts: Make, tmp_path: Path
) -> None:
    """The artifact store keeps bytes under their digest (…/sha256/ab/abcd…), no extension."""
    packed = artifacts("1.0.0")
    digest = sha256_file(packed)
    hexd = digest.split(":", 1)[1]
    stored = tmp_path / "store" / "sha256" / hexd[:2] / hexd
    stored.parent.mkdir(parents=True)
    stored.write_bytes(packed.read_bytes())
    notes = tmp_path / "store" / "notes-blob"
    notes.write_text("release notes")
    spec = spec_for(state_dir, "c1", packed)
    spec = DeploySpec(
        **{
            **{n: getattr(spec, n) for n in DeploySpec.__slots__},
            "artifacts": (
                ArtifactFile("app.tar.gz", digest, stored),
                ArtifactFile("NOTES.txt", sha256_file(notes), notes),
            ),
        }
    )

    [v1] = local.deploy(spec).instances

    assert get(v1.address)["candidate"] == "c1"
    [workdir] = (state_dir / "c1").iterdir()
    assert sorted(p.name for p in workdir.iterdir()) == [
        "NOTES.txt",
        "sample.json",
        "sample_service.py",
    ]
