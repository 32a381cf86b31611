"""`shipyard demo` as a newcomer runs it: a real subprocess that starts its own server, HAProxy
and instances. It must tell the whole story, leave the state behind it, and nothing running,
whether it finishes or is stopped with Ctrl-C halfway."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shipyard.cli.demo.processes import leftovers

DEMO_TIMEOUT = 240  # the demo promises under 3 minutes


def _env() -> dict[str, str]:
    env = os.environ | {"NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    env.pop("SHIPYARD_TOKEN", None)
    return env


def _demo(root: Path) -> list[str]:
    return [sys.executable, "-m", "shipyard.cli.main", "demo", "--data-dir", str(root)]


def _rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(root / "shipyard" / "shipyard.db") as db:
        return list(db.execute(sql))


@pytest.mark.slow
def test_the_demo_tells_the_whole_story_and_leaves_nothing_running(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    started = time.monotonic()
    done = subprocess.run(
        _demo(root), env=_env(), capture_output=True, text=True, timeout=DEMO_TIMEOUT
    )
    took = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    assert took < 180, f"the demo took {took:.0f}s"

    assert out.count("approved by grace (approver)") == 4
    assert "ada may not approve it herself" in out  # separation of duties, shown by the server
    assert "1.0.0-rc.1 took 100% of production at once, no canary" in out  # nothing to compare
    # The healthy canary passes both analyses by the sequential judge, against the stable version.
    assert "1.1.0-rc.1 promoted to 100% of production" in out
    assert out.count("errors pass by the sequential judge") == 4  # 1.1.0-rc.1 and 1.2.0-rc.2
    # Healthy versions fail nothing: they pass by the bound on the error ratio's increase.
    assert out.count("below the negligible 2.5 points") == 4
    # The buggy one fails them, and the evidence is the sequential test's, as explain shows it.
    assert (
        "rolled back automatically: analysis failed: errors: canary is worse than baseline" in out
    )
    assert "errors: fail" in out and '"judge": "sequential"' in out and "max e-value" in out
    assert "onto release/1.2.0" in out
    assert "candidate 1.2.0-rc.2" in out and "sha256:" in out
    assert "1.2.0-rc.2 promoted to 100% of production" in out
    assert "nothing left running" in out

    # The state it left behind says the same as what it printed.
    production = _rows(
        root,
        "SELECT candidate, state FROM deployments WHERE environment = 'production' ORDER BY id",
    )
    assert production == [
        ("1.0.0-rc.1", "succeeded"),
        ("1.1.0-rc.1", "succeeded"),
        ("1.2.0-rc.1", "failed"),
        ("1.2.0-rc.2", "succeeded"),
    ]
    phases = _rows(root, "SELECT canary, stable, phase FROM rollouts ORDER BY id")
    assert phases == [
        ("1.0.0-rc.1", None, "promoted"),  # a first version: 100% at once
        ("1.1.0-rc.1", "1.0.0-rc.1", "promoted"),
        ("1.2.0-rc.1", "1.1.0-rc.1", "rolled_back"),
        ("1.2.0-rc.2", "1.1.0-rc.1", "promoted"),
    ]
    # The fix restores 1.1.0's app.py, and the reproducible build gives the very same bytes.
    digests = dict(
        _rows(
            root,
            "SELECT c.name, a.digest FROM artifacts a JOIN candidates c ON c.id = a.candidate_id",
        )
    )
    assert digests["1.2.0-rc.2"] == digests["1.1.0-rc.1"] != digests["1.2.0-rc.1"]
    approvers = _rows(root, "SELECT DISTINCT actor FROM events WHERE kind = 'deployment.approved'")
    assert approvers == [("grace",)]
    assert leftovers(root) == {}


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The demo's output line by line, read on a thread so the test can wait with a deadline."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            lines.put(text)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.slow
def test_ctrl_c_halfway_stops_everything_and_exits_130(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    proc = subprocess.Popen(
        _demo(root), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: list[str] = []
    try:
        lines = _lines(proc)
        deadline = time.monotonic() + DEMO_TIMEOUT
        # Wait until the buggy canary is in flight: server, HAProxy, instances and load all run.
        while not (seen and "approved by grace" in seen[-1] and "deployment 6" in "".join(seen)):
            text = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert text is not None, "".join(seen)
            seen.append(text)
        assert leftovers(root), "the demo should have HAProxy and instances running by now"
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
        while (text := lines.get(timeout=10)) is not None:
            seen.append(text)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    out = "".join(seen)
    assert code == 130, out[-4000:]
    assert "interrupted (exit 130)" in out and "nothing left running" in out, out[-4000:]
    assert leftovers(root) == {}
    assert (root / "shipyard" / "shipyard.db").exists()  # the state stays to look at


def test_without_haproxy_it_says_how_to_get_it_and_starts_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    root = tmp_path / "demo"
    done = subprocess.run(
        _demo(root),
        env=_env() | {"PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 8, done
    assert "haproxy is not installed: run scripts/setup" in done.stderr
    assert not root.exists()
