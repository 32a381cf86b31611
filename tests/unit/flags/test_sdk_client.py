"""FlagClient: bootstrap, refresh, offline fallback, disk cache, background thread, metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

from shipyard.errors import AdapterError
from shipyard.sdk import FetchResult, FlagClient, StaticFlagSource
from tests.unit.flags.conftest import flag_state


class FlakySource:
    """Serves a state until told to fail, to prove the client keeps its last good state."""

    def __init__(self) -> None:
        self.inner = StaticFlagSource(flag_state())
        self.failing = False
        self.calls = 0

    def fetch(self, etag: str | None) -> FetchResult:
        self.calls += 1
        if self.failing:
            raise AdapterError("server down")
        return self.inner.fetch(etag)


def test_not_ready_until_loaded_and_unknown_flags_are_off() -> None:
    client = FlagClient(None)
    assert not client.ready and not client.is_enabled("checkout")
    client = FlagClient(None, bootstrap=flag_state())
    assert client.ready and client.is_enabled("checkout") and not client.is_enabled("nope")


def test_bootstrap_from_json_file(tmp_path: Path) -> None:
    path = tmp_path / "boot.json"
    path.write_text(json.dumps(flag_state()))
    assert FlagClient(None, bootstrap=path).is_enabled("checkout")


def test_refresh_reports_changed_flags_and_failures_keep_last_state() -> None:
    source = FlakySource()
    changes: list[list[str]] = []
    errors: list[Exception] = []
    recovered: list[bool] = []
    client = FlagClient(
        source,
        refresh_interval=0,
        on_change=changes.append,
        on_error=errors.append,
        on_recover=lambda: recovered.append(True),
    )
    assert client.refresh() and client.is_enabled("checkout")
    assert "checkout" in changes[0]
    assert not client.refresh()  # 304-equivalent: nothing changed
    source.failing = True
    assert not client.refresh()
    assert isinstance(client.last_error, AdapterError) and errors
    assert client.is_enabled("checkout")  # offline: last good state still served
    source.failing = False
    source.inner.update(flag_state(kill=True))
    assert client.refresh()
    assert recovered == [True] and client.last_error is None
    assert changes[-1] == ["checkout"]
    assert not client.is_enabled("checkout")


def test_disk_cache_survives_a_restart_while_offline(tmp_path: Path) -> None:
    cache = tmp_path / "state" / "flags.json"
    first = FlagClient(FlakySource(), cache_path=cache, refresh_interval=0)
    first.refresh()
    assert cache.is_file()
    down = FlakySource()
    down.failing = True
    second = FlagClient(down, cache_path=cache, refresh_interval=0)
    second.start()
    assert second.ready and second.is_enabled("checkout")
    second.close()


def test_background_refresh_picks_up_changes() -> None:
    source = FlakySource()
    with FlagClient(source, refresh_interval=0.01) as client:
        assert client.is_enabled("checkout")
        source.inner.update(flag_state(kill=True))
        deadline = time.monotonic() + 5
        while client.is_enabled("checkout") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not client.is_enabled("checkout")
    assert source.calls >= 2


def test_default_context_and_exposure_counts() -> None:
    client = FlagClient(None, bootstrap=flag_state(), default_context={"appName": "web"})
    assert client.context({"userId": "1"}) == {"appName": "web", "userId": "1"}
    for user in range(40):
        client.get_variant("limits", {"userId": str(user)})
    client.is_enabled("beta", {"properties": {"plan": "pro"}})
    client.is_enabled("beta", {})
    client.get_variant("checkout")
    counts = client.exposures()
    assert sum(counts["limits"].values()) == 40 and set(counts["limits"]) == {"a", "b"}
    assert counts["beta"] == {"enabled": 1, "disabled": 1}
    assert counts["checkout"] == {"enabled": 1}


def test_outcomes_are_attributed_to_the_users_cohort_and_drained() -> None:
    client = FlagClient(None, bootstrap=flag_state())
    variant = client.get_variant("limits", {"userId": "7"}).name
    client.record_outcome("limits", "purchase", {"userId": "7"}, value=9.5)
    client.record_outcome("limits", "purchase", {"userId": "7"}, value=0.5)
    snap = client.drain_metrics()
    assert snap.outcomes["limits"][variant]["purchase"] == 2
    assert snap.outcome_values["limits"][variant]["purchase"] == 10.0
    assert snap.exposures["limits"][variant] == 1
    assert client.drain_metrics().outcomes == {}
