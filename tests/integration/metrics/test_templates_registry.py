"""Query templates, the memory provider and the registry (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shipyard.adapters.metrics.memory import MemoryProvider
from shipyard.adapters.metrics.prometheus import PrometheusProvider
from shipyard.adapters.metrics.promql import escape_regex, render
from shipyard.adapters.metrics.registry import PROVIDERS, make_provider
from shipyard.adapters.metrics.scrape import ScrapeProvider
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.metrics import MetricProvider, MetricQuery, NoData, Sample

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def q(expression: str, **variables: str) -> MetricQuery:
    return MetricQuery(expression, variables)


def test_placeholders_are_filled_and_label_braces_left_alone() -> None:
    text = 'sum(rate(x{version="{version}", env="{env}"}[1m])) by (version)'
    assert render(q(text, version="1.2.3", env="prod")) == (
        'sum(rate(x{version="1.2.3", env="prod"}[1m])) by (version)'
    )


def test_values_are_escaped_for_their_string() -> None:
    assert render(q('x{a="{v}"}', v='a"b\\c')) == 'x{a="a\\"b\\\\c"}'
    assert render(q("x{a='{v}'}", v="it's")) == "x{a='it\\'s'}"
    assert render(q("x{a=`{v}`}", v='"ok"')) == 'x{a=`"ok"`}'


def test_regex_operands_match_the_value_literally() -> None:
    assert escape_regex("1.2+3") == "1\\.2\\+3"
    assert render(q('x{v=~"{v}"}', v="1.2")) == 'x{v=~"1\\\\.2"}'
    assert render(q("x{v!~ `{v}`}", v="1.2")) == "x{v!~ `1\\.2`}"
    assert render(q('x{v=~"{v}|canary"}', v="a.b")) == 'x{v=~"a\\\\.b|canary"}'


@pytest.mark.parametrize(
    ("text", "variables", "message"),
    [
        ('x{a="{v}"}', {}, "no such variable"),
        ('x{a="{v}"}', {"v": "a\nb"}, "control character"),
        ("x{a=`{v}`}", {"v": "a`b"}, "backtick"),
        ("sum(x) > {v}", {"v": "0 or up"}, "outside a string"),
        ('x{a="{v}}', {"v": "1"}, "unterminated"),
        ("  ", {}, "empty"),
    ],
)
def test_unsafe_or_broken_templates_are_refused(
    text: str, variables: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidError, match=message):
        render(MetricQuery(text, variables))


def test_bare_tokens_may_stand_outside_strings() -> None:
    assert render(q("sum({metric}) > {limit}", metric="app:rate5m", limit="0.5")) == (
        "sum(app:rate5m) > 0.5"
    )


def test_comments_are_kept_verbatim() -> None:
    assert render(q('x{a="{v}"} # "{v}\n', v="1")) == 'x{a="1"} # "{v}\n'


def test_memory_provider() -> None:
    memory = MemoryProvider({'x{v="a"}': 0.5})
    assert memory.query(q('x{v="{v}"}', v="a"), AT) == Sample(0.5, AT, 'x{v="a"}')
    assert isinstance(memory.query(q('x{v="{v}"}', v="b"), AT), NoData)
    memory.set("y", lambda at: None)
    assert isinstance(memory.query(q("y"), AT), NoData)
    memory.set("z", float("nan"))
    assert isinstance(memory.query(q("z"), AT), NoData)
    assert memory.asked == ['x{v="a"}', 'x{v="b"}', "y", "z"]
    memory.down = True
    with pytest.raises(AdapterError):
        memory.ping()
    with pytest.raises(AdapterError):
        memory.query(q("z"), AT)


def test_registry_builds_each_kind() -> None:
    assert set(PROVIDERS) == {"prometheus", "scrape", "memory"}
    prom = make_provider("prometheus", {"address": "http://127.0.0.1:9090", "timeout": 2})
    assert isinstance(prom, PrometheusProvider) and prom.timeout == 2.0
    prom.close()
    scrape = make_provider("scrape", {"url": "http://127.0.0.1:1/metrics"})
    assert isinstance(scrape, ScrapeProvider)
    scrape.close()
    memory: MetricProvider = make_provider("memory")
    assert isinstance(memory, MemoryProvider)


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("graphite", {}, "unknown metric provider"),
        ("prometheus", {}, "needs address"),
        ("prometheus", {"address": "127.0.0.1:9090"}, "http"),
        ("prometheus", {"address": "http://x", "timeout": 0}, "timeout"),
        ("prometheus", {"address": "http://x", "url": "http://y"}, "unknown prometheus"),
        ("scrape", {"address": "http://x"}, "unknown scrape"),
        ("memory", {"x": 1}, "no options"),
    ],
)
def test_registry_refuses_bad_config(kind: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidError, match=message):
        make_provider(kind, options)


def test_naive_times_are_refused() -> None:
    provider = PrometheusProvider("http://127.0.0.1:1")
    with pytest.raises(InvalidError, match="timezone"):
        provider.query(q("vector(1)"), datetime(2026, 1, 1))  # noqa: DTZ001
    provider.close()
