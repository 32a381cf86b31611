"""`env:` and `run_as:` of an environment: what its processes are handed, checked at load."""

from __future__ import annotations

import pytest

from shipyard.config.loader import load_config
from shipyard.errors import ConfigError
from shipyard.services.project_config import environment_specs


def _yaml(env_block: str) -> str:
    return f"environments:\n  - name: production\n{env_block}"


def error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(text, file="shipyard.yaml")
    return str(info.value)


def test_env_and_run_as_reach_the_environment_spec() -> None:
    text = _yaml("    run_as: www-data\n    env: {GREETING: hello, LOG_LEVEL: debug}\n")
    [spec] = environment_specs(text)
    assert dict(spec.env) == {"GREETING": "hello", "LOG_LEVEL": "debug"}
    assert spec.run_as == "www-data"


def test_without_them_nothing_is_handed_and_the_default_user_is_used() -> None:
    [spec] = environment_specs(_yaml("    target: {kind: local, start: ./run}\n"))
    assert (spec.env, spec.run_as) == ((), None)


@pytest.mark.parametrize(
    ("block", "says"),
    [
        ("    env: {SHIPYARD_DATABASE_URL: x}\n", "reserved"),
        ("    env: {shipyard_token: x}\n", "reserved"),
        ("    env: {'1ABC': x}\n", "not an identifier"),
        ("    env: {'A-B': x}\n", "not an identifier"),
        ("    env: {PORT: 8080}\n", "valid string"),
        ("    env: {BIG: '" + "x" * 40_000 + "'}\n", "at most 32768 bytes"),
        ("    run_as: 'root; rm -rf /'\n", "run_as"),
        ("    run_as: Admin\n", "run_as"),
    ],
)
def test_bad_env_or_run_as_is_refused_with_its_line(block: str, says: str) -> None:
    message = error(_yaml(block))
    assert message.startswith("shipyard.yaml:3: environments[0].")
    assert says in message


def test_too_many_variables_are_refused() -> None:
    many = ", ".join(f"V{i}: x" for i in range(201))
    assert "at most 200 variables" in error(_yaml(f"    env: {{{many}}}\n"))
