"""Hostile or careless shipyard.yaml files are refused fast, in one line with file:line:field."""

from __future__ import annotations

import time

import pytest

from shipyard.config.loader import MAX_BYTES, decode_config, load_config
from shipyard.errors import ConfigError

ENV = "project: shop\nenvironments:\n  - name: staging\n"


def _refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(text)
    assert "\n" not in str(caught.value)
    return caught.value


def _alias_bomb(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijk"[:levels]:
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text + "project: shop\n"


@pytest.mark.timeout(10)
def test_a_yaml_alias_bomb_is_refused_within_a_second() -> None:
    began = time.process_time()
    err = _refused(_alias_bomb())
    assert time.process_time() - began < 1.0
    assert "expands to more than" in err.reason and err.line is not None


def test_a_few_aliases_still_load() -> None:
    text = "project: shop\npolicies:\n  a: &p {steps: [{set_weight: 10}]}\n  b: *p\n"
    assert set(load_config(text).policies) == {"a", "b"}


@pytest.mark.timeout(10)
def test_a_5000_deep_yaml_is_refused_not_a_recursion_error() -> None:
    err = _refused("project: shop\nz: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested more than" in err.reason and err.line == 2


def test_latin1_yaml_is_refused_with_its_line() -> None:
    data = "project: shop\n# caf\xe9 prices\n".encode("latin-1")
    with pytest.raises(ConfigError) as caught:
        decode_config(data)
    assert caught.value.line == 2 and "not UTF-8" in str(caught.value)
    assert str(caught.value).startswith("shipyard.yaml:2: ")


def test_a_file_over_the_size_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="over the"):
        decode_config(b"#" * (MAX_BYTES + 1))


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ("    target: {kind: local, instances: 100000000000000000000}\n", "instances", "1 to 100"),
        ("    target: {kind: local, instances: 1e20}\n", "instances", "1 to 100"),
        ("    freeze:\n      - {cron: '0 18 * * 5', duration: 1.0e+20}\n", "duration", "a year"),
        ("    freeze:\n      - {cron: '0 18 * * 5', duration: .inf}\n", "duration", "finite"),
        ("    freeze:\n      - {cron: '0 18 * * 5', duration: .nan}\n", "duration", "finite"),
        ("    approval: {expires_after: 999w}\n", "expires_after", "a year"),
        ("    target: {kind: command, deploy: x, timeout: .inf}\n", "timeout", "finite"),
    ],
)
def test_numbers_out_of_bounds_are_refused(extra: str, field: str, reason: str) -> None:
    err = _refused(ENV + extra)
    assert err.field.endswith(field) and reason in err.reason
    assert err.line in (4, 5)


@pytest.mark.parametrize(
    "step", ["set_weight: .nan", "set_weight: 101", "set_weight: -1", "pause: {duration: .inf}"]
)
def test_weights_are_0_to_100_and_durations_finite(step: str) -> None:
    err = _refused(f"project: shop\npolicies:\n  p:\n    steps:\n      - {step}\n")
    assert err.line == 5 and err.field.startswith("policies.p.steps[0]")


def test_a_year_is_still_a_duration() -> None:
    cfg = load_config(ENV + "    approval: {expires_after: 52w}\n")
    assert cfg.environments[0].approval is not None
