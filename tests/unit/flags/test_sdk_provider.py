"""The OpenFeature provider: values, reasons, error codes, context mapping, events, tracking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus
from openfeature.track import TrackingEventDetails

from shipyard.sdk import FlagClient, ShipyardProvider, StaticFlagSource, to_unleash_context
from tests.unit.flags.conftest import flag_state


@pytest.fixture
def provider() -> Iterator[ShipyardProvider]:
    p = ShipyardProvider(FlagClient(StaticFlagSource(flag_state()), refresh_interval=0))
    p.initialize(EvaluationContext())
    yield p
    p.shutdown()


def test_context_mapping() -> None:
    ctx = EvaluationContext(
        "u1", {"sessionId": "s", "plan": "pro", "seats": 3, "beta": True, "tags": ["a"]}
    )
    assert to_unleash_context(ctx) == {
        "userId": "u1",
        "sessionId": "s",
        "properties": {"plan": "pro", "seats": "3", "beta": "true", "tags": '["a"]'},
    }
    assert to_unleash_context(None) == {}


def test_boolean_reasons(provider: ShipyardProvider) -> None:
    static = provider.resolve_boolean_details("checkout", False)
    assert static.value is True and static.reason == Reason.STATIC and static.error_code is None
    pro = EvaluationContext("u1", {"plan": "pro"})
    hit = provider.resolve_boolean_details("beta", False, pro)
    assert hit.value is True and hit.reason == Reason.TARGETING_MATCH and hit.variant == "on"
    miss = provider.resolve_boolean_details("beta", True, EvaluationContext("u1"))
    assert miss.value is False and miss.reason == Reason.DEFAULT


def test_kill_switch_beats_the_callers_default() -> None:
    p = ShipyardProvider(FlagClient(None, bootstrap=flag_state(kill=True)))
    details = p.resolve_boolean_details("checkout", True)
    assert details.value is False and details.reason == Reason.DISABLED
    text = p.resolve_string_details("checkout", "fallback")
    assert text.value == "fallback" and text.reason == Reason.DISABLED


def test_typed_values_from_variant_payloads(provider: ShipyardProvider) -> None:
    title = provider.resolve_string_details("title", "x")
    assert (title.value, title.variant, title.reason) == ("Hello", "v1", Reason.STATIC)
    assert provider.resolve_string_details("plain", "x").value == "only"
    assert provider.resolve_integer_details("ratio", 0).value == 2
    assert provider.resolve_float_details("ratio", 0.0).value == 2.0
    limits = provider.resolve_object_details("limits", {}, EvaluationContext("u1"))
    assert limits.value in ({"max": 3}, {"max": 5}) and limits.reason == Reason.SPLIT
    # same user, same answer: stickiness
    again = provider.resolve_object_details("limits", {}, EvaluationContext("u1"))
    assert again.value == limits.value


@pytest.mark.parametrize(
    ("method", "flag", "default", "code"),
    [
        ("resolve_boolean_details", "missing", True, ErrorCode.FLAG_NOT_FOUND),
        ("resolve_string_details", "ratio", "d", ErrorCode.TYPE_MISMATCH),
        ("resolve_integer_details", "title", 1, ErrorCode.TYPE_MISMATCH),
        ("resolve_object_details", "broken", {"d": 1}, ErrorCode.PARSE_ERROR),
        ("resolve_float_details", "plain", 1.5, ErrorCode.TYPE_MISMATCH),
    ],
)
def test_errors_return_the_default_with_a_code(
    provider: ShipyardProvider, method: str, flag: str, default: Any, code: ErrorCode
) -> None:
    details = getattr(provider, method)(flag, default)
    assert details.value == default and details.error_code == code
    assert details.reason == Reason.ERROR and details.error_message


def test_not_ready_without_state() -> None:
    class Down:
        def fetch(self, etag: str | None) -> Any:
            from shipyard.errors import AdapterError

            raise AdapterError("down")

    p = ShipyardProvider(FlagClient(Down(), refresh_interval=0))
    details = p.resolve_boolean_details("checkout", True)
    assert details.value is True and details.error_code == ErrorCode.PROVIDER_NOT_READY


def test_through_the_openfeature_api_with_events_and_tracking() -> None:
    source = StaticFlagSource(flag_state())
    provider = ShipyardProvider(FlagClient(source, refresh_interval=0))
    changed: list[Any] = []
    api.set_provider(provider, "shipyard-test")
    try:
        client = api.get_client("shipyard-test")
        client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, changed.append)
        assert client.get_provider_status() == ProviderStatus.READY
        details = client.get_string_details("title", "x", EvaluationContext("u1"))
        assert details.value == "Hello" and details.reason == Reason.STATIC
        source.update(flag_state(title="Bonjour"))
        provider.client.refresh()
        assert changed and changed[-1].flags_changed == ["title"]
        assert client.get_string_value("title", "x") == "Bonjour"
        client.track(
            "purchase", EvaluationContext("u1"), TrackingEventDetails(3.0, {"flag": "title"})
        )
        snap = provider.client.drain_metrics()
        assert snap.outcomes == {"title": {"v1": {"purchase": 1}}}
        assert snap.exposures["title"]["v1"] == 2
    finally:
        api.clear_providers()
