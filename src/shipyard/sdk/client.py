"""In-process flag client: last good state, background refresh, offline fallback, metrics.

Evaluation never waits on the network: it reads an immutable compiled ``FlagState`` that a
daemon thread swaps when the source reports a change. When the source fails, the client keeps
serving the last good state (from memory, the bootstrap, or the on-disk cache).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.domain.flags import (
    DISABLED,
    Evaluation,
    FlagState,
    Variant,
    compile_state,
)
from shipyard.errors import ShipyardError
from shipyard.sdk.metrics import CohortMetrics, MetricsSnapshot, empty
from shipyard.sdk.reporting import MetricsReporter
from shipyard.sdk.sources import FlagSource

__all__ = ["FlagClient"]

_log = logging.getLogger(__name__)
Context = Mapping[str, Any]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _load_json(source: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    data: Mapping[str, Any] = json.loads(Path(source).read_text(encoding="utf-8"))
    return data


def _changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    def index(state: Mapping[str, Any] | None) -> dict[str, str]:
        features = (state or {}).get("features") or ()
        return {f["name"]: json.dumps(f, sort_keys=True) for f in features}

    before, after = index(old), index(new)
    segments_changed = (old or {}).get("segments") != new.get("segments")
    return sorted(
        name
        for name in before.keys() | after.keys()
        if segments_changed or before.get(name) != after.get(name)
    )


class FlagClient:
    """Evaluate flags from a ``FlagSource``; thread-safe, cheap per call.

    ``bootstrap`` (a dict or a JSON file path) and ``cache_path`` (last good state written after
    every successful fetch) make the client usable before, and without, any network.
    ``default_context`` (e.g. ``appName``, ``environment``) is merged under every call's context.
    """

    def __init__(
        self,
        source: FlagSource | None = None,
        *,
        bootstrap: Mapping[str, Any] | str | Path | None = None,
        cache_path: str | Path | None = None,
        refresh_interval: float = 15.0,
        default_context: Context | None = None,
        clock: Callable[[], datetime] = _utc_now,
        on_change: Callable[[list[str]], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_recover: Callable[[], None] | None = None,
        reporter: MetricsReporter | None = None,
        report_interval: float = 10.0,
    ) -> None:
        self._source = source
        self._interval = refresh_interval
        self._clock = clock
        self._defaults = dict(default_context or {})
        self._cache_path = Path(cache_path) if cache_path is not None else None
        self._etag: str | None = None
        self._state: FlagState | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_change = on_change
        self.on_error = on_error
        self.on_recover = on_recover
        self.last_error: Exception | None = None
        self.metrics = CohortMetrics()
        self._reporter = reporter
        self._report_interval = report_interval
        self._report_lock = threading.Lock()
        self._pending: tuple[str, MetricsSnapshot] | None = None  # sent, not yet acknowledged
        self._reporting: threading.Thread | None = None
        self.last_report_error: Exception | None = None
        initial = bootstrap
        if initial is None and self._cache_path is not None and self._cache_path.is_file():
            initial = self._cache_path
        if initial is not None:
            self._state = compile_state(_load_json(initial), clock=clock)

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> FlagState | None:
        """The compiled state in use, or ``None`` before the first successful load."""
        return self._state

    @property
    def ready(self) -> bool:
        return self._state is not None

    def refresh(self) -> bool:
        """Fetch once; returns True when the state changed. Failures keep the last good state."""
        if self._source is None:
            return False
        with self._refresh_lock:
            try:
                result = self._source.fetch(self._etag)
                if not result.modified or result.state is None:
                    self._recovered()
                    return False
                new = compile_state(result.state, clock=self._clock)
            except (ShipyardError, ValueError, KeyError, TypeError) as exc:
                self.last_error = exc
                _log.warning("flag refresh failed, serving last good state: %s", exc)
                if self.on_error is not None:
                    self.on_error(exc)
                return False
            old = self._state.raw if self._state is not None else None
            self._state, self._etag = new, result.etag
            self._persist(result.state)
            self._recovered()
        changed = _changed(old, result.state)
        if changed and self.on_change is not None:
            self.on_change(changed)
        return bool(changed)

    def _recovered(self) -> None:
        if self.last_error is not None:
            self.last_error = None
            if self.on_recover is not None:
                self.on_recover()

    def _persist(self, raw: Mapping[str, Any]) -> None:
        if self._cache_path is None:
            return
        tmp = self._cache_path.with_suffix(self._cache_path.suffix + ".tmp")
        try:
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(raw), encoding="utf-8")
            tmp.replace(self._cache_path)
        except OSError as exc:
            _log.warning("cannot write flag cache %s: %s", self._cache_path, exc)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Load synchronously once, then keep refreshing (and reporting) in daemon threads.

        A source that can push (``SseFlagSource``) is subscribed to, so a change applies as soon
        as it arrives; the timed refresh stays as the fallback when the push channel is down.
        """
        self.refresh()
        self._stop.clear()
        subscribe = getattr(self._source, "subscribe", None)
        if callable(subscribe):
            subscribe(self.refresh)
        if self._thread is None and self._source is not None and self._interval > 0:
            self._thread = threading.Thread(target=self._run, name="shipyard-flags", daemon=True)
            self._thread.start()
        if self._reporting is None and self._reporter is not None and self._report_interval > 0:
            self._reporting = threading.Thread(
                target=self._report_loop, name="shipyard-flag-metrics", daemon=True
            )
            self._reporting.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh()

    def _report_loop(self) -> None:
        while not self._stop.wait(self._report_interval):
            self.report()

    def close(self) -> None:
        """Stop the threads, send what was counted since the last report, close the source."""
        self._stop.set()
        for thread in (self._thread, self._reporting):
            if thread is not None:
                thread.join(timeout=5)
        self._thread = self._reporting = None
        if self._reporter is not None:
            self.report()
        for part in (self._source, self._reporter):
            close = getattr(part, "close", None)
            if callable(close):
                close()

    # -- metrics reporting -----------------------------------------------------------------

    def report(self) -> bool:
        """Send the counts since the last acknowledged report; True when nothing is left over.

        A batch keeps its id until the reporter accepts it: after a failure the same batch goes
        again (the server counts an id once), and newer counts wait for the next batch.
        """
        if self._reporter is None:
            return False
        with self._report_lock:
            if self._pending is None:
                fresh = self.metrics.snapshot(reset=True)
                if empty(fresh):
                    return True
                self._pending = (uuid.uuid4().hex, fresh)
            batch_id, snapshot = self._pending
            try:
                self._reporter.send(batch_id, snapshot)
            except ShipyardError as exc:
                self.last_report_error = exc
                _log.warning("flag metrics report failed, will retry batch %s: %s", batch_id, exc)
                return False
            self._pending, self.last_report_error = None, None
            return True

    def __enter__(self) -> FlagClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- evaluation ------------------------------------------------------------------------

    def context(self, ctx: Context | None) -> Context:
        """Merge the client's default context under ``ctx``."""
        if not self._defaults:
            return ctx or {}
        return {**self._defaults, **ctx} if ctx else self._defaults

    def is_enabled(self, name: str, ctx: Context | None = None) -> bool:
        state = self._state
        enabled = state is not None and state.is_enabled(name, self.context(ctx))
        self.metrics.expose(name, "enabled" if enabled else "disabled")
        return enabled

    def get_variant(self, name: str, ctx: Context | None = None) -> Variant:
        state = self._state
        variant = DISABLED if state is None else state.get_variant(name, self.context(ctx))
        self.metrics.expose(name, _variant_cohort(variant))
        return variant

    def evaluate(self, name: str, ctx: Context | None = None) -> Evaluation | None:
        """Outcome with reason (``None`` for an unknown flag); counts one exposure."""
        state = self._state
        result = None if state is None else state.evaluate(name, self.context(ctx))
        if result is not None:
            self.metrics.expose(name, _cohort(result))
        return result

    def record_outcome(
        self, flag: str, event: str, ctx: Context | None = None, value: float | None = None
    ) -> None:
        """Count an outcome (conversion, error...) against the cohort ``ctx`` is in for ``flag``."""
        state = self._state
        result = None if state is None else state.evaluate(flag, self.context(ctx))
        self.metrics.outcome(flag, "disabled" if result is None else _cohort(result), event, value)

    def exposures(self) -> dict[str, dict[str, int]]:
        """Exposure counts per flag and cohort (variant name, or enabled/disabled)."""
        return self.metrics.snapshot().exposures

    def drain_metrics(self) -> MetricsSnapshot:
        """Counts since the last drain, resetting them (do not mix with a ``reporter``)."""
        return self.metrics.snapshot(reset=True)


def _variant_cohort(variant: Variant) -> str:
    if variant.enabled:
        return variant.name
    return "enabled" if variant.feature_enabled else "disabled"


def _cohort(result: Evaluation) -> str:
    return (
        result.variant.name
        if result.variant.enabled
        else "enabled"
        if result.enabled
        else "disabled"
    )
