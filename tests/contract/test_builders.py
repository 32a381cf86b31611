"""What every builder promises (ports.builds.Builder), checked on each implementation.

There is one today, ``LocalBuilder`` (``/bin/sh -c`` on this machine), and no memory twin: the
use-case tests run real builds. The contract is written for the next builder (a container, a
remote runner) to pass: add it to ``KINDS``.

The contract: the command runs once in ``source_dir`` with the request's environment (and
``SHIPYARD_ARTIFACTS_DIR``), never the server's; what it leaves in ``artifacts_dir`` and the
globs select comes back as files named relative to it; a failure, a timeout or a command that
cannot start is a result (``succeeded=False``, one readable line, no files), never an exception;
the log gets stdout and stderr, appended; ``stop`` ends a running build with BuildInterrupted
and the builder keeps working afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from shipyard.adapters.builds.local import LocalBuilder
from shipyard.ports.builds import Builder, BuildInterrupted, BuildRequest, BuildResult

MAKERS: dict[str, Callable[[], Builder]] = {"local": LocalBuilder}
KINDS = list(MAKERS)
ENV = {"SHIPYARD_VERSION": "1.2.0", "SHIPYARD_CANDIDATE": "1.2.0-rc.1", "SHIPYARD_SHA": "a" * 40}


@pytest.fixture(params=KINDS)
def builder(request: pytest.FixtureRequest) -> Builder:
    return MAKERS[request.param]()


def _request(tmp_path: Path, command: str, **fields: object) -> BuildRequest:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "app.py").write_text("print('hi')\n")
    return BuildRequest(
        source_dir=source,
        command=command,
        env=ENV,
        artifacts_dir=tmp_path / "out",
        log_path=tmp_path / "logs" / "build.log",
        **fields,  # type: ignore[arg-type]
    )


def _failed(result: BuildResult) -> None:
    assert not result.succeeded
    assert result.files == ()
    assert result.reason and "\n" not in result.reason


def test_a_build_runs_in_the_source_with_the_request_environment(
    builder: Builder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVER_ONLY_TOKEN", "must-not-leak")
    request = _request(
        tmp_path,
        'mkdir -p "$SHIPYARD_ARTIFACTS_DIR/bin" && cp app.py "$SHIPYARD_ARTIFACTS_DIR/bin/" '
        '&& env > "$SHIPYARD_ARTIFACTS_DIR/env.txt" && pwd > "$SHIPYARD_ARTIFACTS_DIR/cwd.txt"',
    )

    result = builder.run(request)

    assert (result.succeeded, result.exit_code, result.reason) == (True, 0, "")
    assert sorted(f.name for f in result.files) == ["bin/app.py", "cwd.txt", "env.txt"]
    by_name = {f.name: f.path for f in result.files}
    assert by_name["bin/app.py"].read_text() == "print('hi')\n"
    assert Path(by_name["cwd.txt"].read_text().strip()).resolve() == request.source_dir.resolve()
    env = dict(line.split("=", 1) for line in by_name["env.txt"].read_text().splitlines() if line)
    assert {k: env[k] for k in ENV} == ENV
    assert env["SHIPYARD_ARTIFACTS_DIR"] == str(request.artifacts_dir)
    assert "SERVER_ONLY_TOKEN" not in env


def test_globs_select_the_artifacts_and_nothing_outside_the_folder(
    builder: Builder, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("server file")
    request = _request(
        tmp_path,
        'cd "$SHIPYARD_ARTIFACTS_DIR" && mkdir -p dist && echo a > dist/app.tar.gz '
        f"&& echo b > notes.md && ln -s {outside} dist/escape.tar.gz",
        artifact_globs=("dist/*.tar.gz",),
    )

    result = builder.run(request)

    assert result.succeeded
    assert [f.name for f in result.files] == ["dist/app.tar.gz"]


def test_no_artifacts_is_a_success_with_no_files(builder: Builder, tmp_path: Path) -> None:
    result = builder.run(_request(tmp_path, "true"))

    assert (result.succeeded, result.exit_code, result.files) == (True, 0, ())


def test_a_failing_command_is_a_result_with_its_status(builder: Builder, tmp_path: Path) -> None:
    result = builder.run(_request(tmp_path, 'touch "$SHIPYARD_ARTIFACTS_DIR/half" && exit 3'))

    _failed(result)
    assert result.exit_code == 3


def test_an_unknown_program_is_a_failure_not_an_exception(builder: Builder, tmp_path: Path) -> None:
    result = builder.run(_request(tmp_path, "no-such-program-anywhere --build"))

    _failed(result)
    assert result.exit_code == 127


def test_a_build_that_cannot_start_has_no_exit_code(builder: Builder, tmp_path: Path) -> None:
    request = _request(tmp_path, "true")
    missing = tmp_path / "no-such-checkout"

    result = builder.run(replace(request, source_dir=missing))

    _failed(result)
    assert result.exit_code is None


def test_a_timeout_ends_the_build_and_everything_it_started(
    builder: Builder, tmp_path: Path
) -> None:
    request = _request(
        tmp_path, 'sleep 30 & echo $! > "$SHIPYARD_ARTIFACTS_DIR/child.pid"; wait', timeout_s=0.5
    )
    started = time.monotonic()

    result = builder.run(request)

    assert time.monotonic() - started < 5
    _failed(result)
    assert result.exit_code is None and "timed out" in result.reason
    child = int((request.artifacts_dir / "child.pid").read_text())
    deadline = time.monotonic() + 3
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or "Z" in _state(child)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_the_log_gets_stdout_and_stderr_appended(builder: Builder, tmp_path: Path) -> None:
    request = _request(tmp_path, "echo out-1; echo err-1 >&2; echo out-2")
    builder.run(request)
    builder.run(replace(request, command="echo second-run"))

    log = request.log_path.read_text()

    assert log.index("out-1") < log.index("err-1") < log.index("out-2") < log.index("second-run")


def test_stop_interrupts_a_running_build_and_the_builder_keeps_working(
    builder: Builder, tmp_path: Path
) -> None:
    request = _request(tmp_path, 'touch "$SHIPYARD_ARTIFACTS_DIR/started"; sleep 30')
    marker = request.artifacts_dir / "started"  # the build may run as another user: its folder
    outcome: list[object] = []

    def build() -> None:
        try:
            outcome.append(builder.run(request))
        except BuildInterrupted as exc:
            outcome.append(exc)

    thread = threading.Thread(target=build)
    started = time.monotonic()
    thread.start()
    while not marker.exists() and time.monotonic() - started < 10:
        time.sleep(0.02)
    builder.stop()
    thread.join(timeout=10)

    assert not thread.is_alive() and time.monotonic() - started < 10
    assert len(outcome) == 1 and isinstance(outcome[0], BuildInterrupted)
    (tmp_path / "next").mkdir()
    assert builder.run(_request(tmp_path / "next", "true")).succeeded  # later builds run as usual
