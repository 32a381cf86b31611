"""OpenFeature provider for Shipyard flags, evaluating in-process with Unleash semantics.

Booleans are the flag's on/off (a kill switch wins over the caller's default); strings,
numbers and objects come from the resolved variant's payload. Reasons follow the evaluator:
STATIC, TARGETING_MATCH, SPLIT, DEFAULT, DISABLED; failures return the caller's default with an
OpenFeature error code (FLAG_NOT_FOUND, TYPE_MISMATCH, PARSE_ERROR, PROVIDER_NOT_READY).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.flag_evaluation import Reason as OFReason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from shipyard.domain.flags import Evaluation, Reason
from shipyard.sdk.client import FlagClient
from shipyard.sdk.context import to_unleash_context
from shipyard.sdk.reporting import HttpMetricsReporter
from shipyard.sdk.sources import FlagSource, HttpFlagSource, SseFlagSource

__all__ = ["ShipyardProvider"]

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]

_REASONS: dict[Reason, str] = {
    Reason.STATIC: OFReason.STATIC,
    Reason.TARGETING_MATCH: OFReason.TARGETING_MATCH,
    Reason.SPLIT: OFReason.SPLIT,
    Reason.DEFAULT: OFReason.DEFAULT,
    Reason.DISABLED: OFReason.DISABLED,
    Reason.PREREQUISITE_FAILED: OFReason.DISABLED,
}


class _Mismatch(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _error(default: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default, reason=OFReason.ERROR, error_code=code, error_message=message
    )


def _as_string(ev: Evaluation) -> str:
    v = ev.variant
    if v.payload_type is None:
        return v.name  # a variant without payload resolves to its name
    if v.payload_type not in ("string", "csv"):
        raise _Mismatch(ErrorCode.TYPE_MISMATCH, f"variant payload is {v.payload_type}, not string")
    return v.payload_value or ""


def _number(ev: Evaluation) -> float:
    v = ev.variant
    if v.payload_type != "number":
        raise _Mismatch(ErrorCode.TYPE_MISMATCH, f"variant payload is {v.payload_type}, not number")
    try:
        return float(v.payload_value or "")
    except ValueError as exc:
        raise _Mismatch(ErrorCode.PARSE_ERROR, f"bad number payload {v.payload_value!r}") from exc


def _as_int(ev: Evaluation) -> int:
    number = _number(ev)
    if not number.is_integer():
        raise _Mismatch(ErrorCode.TYPE_MISMATCH, f"number payload {number} is not an integer")
    return int(number)


def _as_object(ev: Evaluation) -> ObjectValue:
    v = ev.variant
    if v.payload_type != "json":
        raise _Mismatch(ErrorCode.TYPE_MISMATCH, f"variant payload is {v.payload_type}, not json")
    try:
        value = json.loads(v.payload_value or "")
    except ValueError as exc:
        raise _Mismatch(ErrorCode.PARSE_ERROR, f"bad json payload: {exc}") from exc
    if not isinstance(value, dict | list):
        raise _Mismatch(ErrorCode.TYPE_MISMATCH, "json payload is not an object or array")
    return value


class ShipyardProvider(AbstractProvider):
    """An OpenFeature provider backed by a ``FlagClient``.

    Build it around any client, or with ``ShipyardProvider.from_api(...)`` for the Shipyard API.
    """

    def __init__(self, client: FlagClient) -> None:
        super().__init__()
        self.client = client
        client.on_change = self._changed
        client.on_error = self._failed
        client.on_recover = self._recovered

    @classmethod
    def from_api(
        cls,
        base_url: str,
        project: str,
        environment: str,
        token: str,
        *,
        refresh_interval: float = 15.0,
        bootstrap: Mapping[str, Any] | str | Path | None = None,
        cache_path: str | Path | None = None,
        app_name: str | None = None,
        stream: bool = False,
        report_metrics: bool = False,
        report_interval: float = 10.0,
    ) -> ShipyardProvider:
        """``stream``: changes pushed over server-sent events (polling stays as the fallback);
        ``report_metrics``: cohort counts go to the server, for ``router: flag`` rollouts."""
        defaults: dict[str, Any] = {"environment": environment}
        if app_name:
            defaults["appName"] = app_name
        source: FlagSource
        if stream:
            source = SseFlagSource(base_url, project, environment, token)
        else:
            source = HttpFlagSource(base_url, project, environment, token)
        reporter = None
        if report_metrics:
            reporter = HttpMetricsReporter(
                base_url, project, environment, token, app_name=app_name or ""
            )
        client = FlagClient(
            source,
            bootstrap=bootstrap,
            cache_path=cache_path,
            refresh_interval=refresh_interval,
            default_context=defaults,
            reporter=reporter,
            report_interval=report_interval,
        )
        return cls(client)

    # -- lifecycle and events ----------------------------------------------------------------

    def get_metadata(self) -> Metadata:
        return Metadata(name="shipyard")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        self.client.start()
        if not self.client.ready:
            raise ProviderNotReadyError(f"no flag state yet: {self.client.last_error}")

    def shutdown(self) -> None:
        self.client.close()

    def _changed(self, flags: list[str]) -> None:
        self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=flags))

    def _failed(self, exc: Exception) -> None:
        if self.client.ready:
            self.emit_provider_stale(ProviderEventDetails(message=f"serving last state: {exc}"))
        else:
            self.emit_provider_error(
                ProviderEventDetails(message=str(exc), error_code=ErrorCode.PROVIDER_NOT_READY)
            )

    def _recovered(self) -> None:
        self.emit_provider_ready(ProviderEventDetails(message="flag state refreshed"))

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Count an outcome for the cohort of the flag named by the ``flag`` attribute."""
        attrs = tracking_event_details.attributes if tracking_event_details else {}
        flag = attrs.get("flag")
        value = tracking_event_details.value if tracking_event_details else None
        if isinstance(flag, str):
            ctx = to_unleash_context(evaluation_context)
            self.client.record_outcome(flag, tracking_event_name, ctx, value)

    # -- resolution ----------------------------------------------------------------------------

    def _resolve(
        self,
        key: str,
        default: T,
        ctx: EvaluationContext | None,
        convert: Callable[[Evaluation], T],
    ) -> FlagResolutionDetails[T]:
        if not self.client.ready:
            return _error(default, ErrorCode.PROVIDER_NOT_READY, "no flag state loaded yet")
        ev = self.client.evaluate(key, to_unleash_context(ctx))
        if ev is None:
            return _error(default, ErrorCode.FLAG_NOT_FOUND, f"flag {key!r} not found")
        meta = {"featureEnabled": ev.enabled}
        if not ev.variant.enabled and convert is not _enabled:
            return FlagResolutionDetails(
                value=default, reason=_REASONS[ev.reason], flag_metadata=meta
            )
        try:
            value = convert(ev)
        except _Mismatch as exc:
            return _error(default, exc.code, str(exc))
        variant = ev.variant.name if ev.variant.enabled else ("on" if ev.enabled else "off")
        return FlagResolutionDetails(
            value=value, reason=_REASONS[ev.reason], variant=variant, flag_metadata=meta
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, _enabled)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, _as_string)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, _as_int)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, _number)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        return self._resolve(flag_key, default_value, evaluation_context, _as_object)


def _enabled(ev: Evaluation) -> bool:
    return ev.enabled
