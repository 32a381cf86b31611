"""LocalBuilder runs real shell commands: env, logs, failures, timeouts, artifact globs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shipyard.adapters.builds.local import LocalBuilder
from shipyard.ports.builds import BuildRequest


def _request(tmp_path: Path, command: str, **kw: object) -> BuildRequest:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "app.py").write_text("print('hi')\n")
    return BuildRequest(
        source_dir=src,
        command=command,
        env={
            "SHIPYARD_VERSION": "1.2.0",
            "SHIPYARD_CANDIDATE": "1.2.0-rc.1",
            "SHIPYARD_SHA": "abc",
        },
        artifacts_dir=tmp_path / "out",
        log_path=tmp_path / "logs" / "build.log",
        **kw,  # type: ignore[arg-type]
    )


def test_env_cwd_and_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "leak")
    req = _request(
        tmp_path,
        'mkdir -p "$SHIPYARD_ARTIFACTS_DIR/bin" && cp app.py "$SHIPYARD_ARTIFACTS_DIR/bin/" && '
        'env > "$SHIPYARD_ARTIFACTS_DIR/env.txt" && pwd',
    )
    result = LocalBuilder().run(req)
    assert (result.succeeded, result.exit_code, result.reason) == (True, 0, "")
    assert [f.name for f in result.files] == ["bin/app.py", "env.txt"]
    env = dict(
        line.split("=", 1) for line in (req.artifacts_dir / "env.txt").read_text().splitlines()
    )
    assert env["SHIPYARD_VERSION"] == "1.2.0"
    assert env["SHIPYARD_CANDIDATE"] == "1.2.0-rc.1"
    assert env["SHIPYARD_SHA"] == "abc"
    assert env["SHIPYARD_ARTIFACTS_DIR"] == str(req.artifacts_dir)
    assert env["PATH"] == os.environ["PATH"]
    assert "SECRET_TOKEN" not in env  # a clean-ish environment
    assert str(req.source_dir) in req.log_path.read_text()


def test_log_captures_stdout_and_stderr_in_order(tmp_path: Path) -> None:
    req = _request(tmp_path, "echo out; echo err >&2; echo done")
    LocalBuilder().run(req)
    log = req.log_path.read_text()
    assert log.index("out") < log.index("err") < log.index("done")


def test_failure_reports_status(tmp_path: Path) -> None:
    req = _request(tmp_path, 'touch "$SHIPYARD_ARTIFACTS_DIR/partial"; echo boom; exit 3')
    result = LocalBuilder().run(req)
    assert (result.succeeded, result.exit_code) == (False, 3)
    assert result.reason == "build command exited with status 3"
    assert result.files == ()
    assert "boom" in req.log_path.read_text()


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    req = _request(tmp_path, f"(sleep 3; touch {marker}) & sleep 30", timeout_s=0.5)
    started = time.monotonic()
    result = LocalBuilder().run(req)
    assert time.monotonic() - started < 10
    assert (result.succeeded, result.exit_code) == (False, None)
    assert result.reason == "timed out after 0.5s"
    assert "timed out" in req.log_path.read_text()
    time.sleep(3.5)
    assert not marker.exists()  # the background child died with the group


def test_globs_select_regular_files(tmp_path: Path) -> None:
    req = _request(
        tmp_path,
        'cd "$SHIPYARD_ARTIFACTS_DIR" && mkdir -p dist/sub && touch dist/a.whl dist/sub/b.whl '
        "dist/notes.txt && ln -s /etc/passwd dist/link.whl",
        artifact_globs=("dist/**/*.whl",),
    )
    result = LocalBuilder().run(req)
    assert result.succeeded
    assert [f.name for f in result.files] == ["dist/a.whl", "dist/sub/b.whl"]
    assert all(f.path.is_file() for f in result.files)


def test_no_artifacts_is_a_success_with_zero_files(tmp_path: Path) -> None:
    result = LocalBuilder().run(_request(tmp_path, "true"))
    assert result.succeeded
    assert result.files == ()


def test_command_not_found_is_a_failure(tmp_path: Path) -> None:
    result = LocalBuilder().run(_request(tmp_path, "no-such-build-tool --release"))
    assert (result.succeeded, result.exit_code) == (False, 127)
