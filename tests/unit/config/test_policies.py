from __future__ import annotations

import pytest

from shipyard.config.loader import load_config
from shipyard.errors import ConfigError

EXACTLY_ONE = "each step is exactly one of set_weight, pause, analysis, approval, segment, mirror"


def error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(text)
    return str(info.value)


def policy(steps: str, head: str = "") -> str:
    return "policies:\n  c:\n" + head + "    steps:\n" + steps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            policy("      - set_weight: 5\n        pause: 1m\n"),
            f"shipyard.yaml:4: policies.c.steps[0]: {EXACTLY_ONE}",
        ),
        (policy("      - {}\n"), f"shipyard.yaml:4: policies.c.steps[0]: {EXACTLY_ONE}"),
        (
            policy("      - set_weight: 50\n      - set_weight: 10\n"),
            "shipyard.yaml:5: policies.c.steps[1].set_weight: 10 is less than the 50 before",
        ),
        (
            policy("      - set_weight: 101\n"),
            "shipyard.yaml:4: policies.c.steps[0].set_weight: Input should be less than or equal to 100",
        ),
        (
            policy("      - pause: 2 minutes\n"),
            "shipyard.yaml:4: policies.c.steps[0].pause: '2 minutes' is not a duration like 90s, 2m, 1h30m or 3d",
        ),
        (
            policy("      - set_weight: 0.1\n"),
            "shipyard.yaml:4: policies.c.steps[0].set_weight: haproxy takes whole percents; use router: flag",
        ),
        (
            "checks: {}\npolicies:\n  fast-canary:\n    steps:\n      - analysis: {checks: [errors]}\n",
            "shipyard.yaml:5: policies.fast-canary.steps[0].analysis.checks[0]: no check named 'errors'",
        ),
        (
            policy("      - segment: {match: {header: {name: x}}}\n", "    router: flag\n"),
            "shipyard.yaml:5: policies.c.steps[0].segment.match.header.value: give exactly one of value or regex",
        ),
        (
            policy("      - segment: {match: {path: {prefix: /a}}, weight: 50}\n"),
            "shipyard.yaml:4: policies.c.steps[0].segment.weight: haproxy sends every matching request; use 100",
        ),
        (
            policy("      - set_weight: 10\n", "    strategy: blue_green\n"),
            "shipyard.yaml:5: policies.c.steps[0]: a blue_green policy cannot use set_weight",
        ),
        (
            "policies:\n  c: {keep_old_for: 1h}\n",
            "shipyard.yaml:2: policies.c.keep_old_for: only blue_green policies take keep_old_for",
        ),
        (
            "checks:\n  x: {provider: prometheus, query: 'rate(x{v=\"{{ver}}\"}[1m])'}\n",
            "shipyard.yaml:2: checks.x.query: unknown placeholder {{ver}}; "
            "use one of version, stable_version, project, environment, interval",
        ),
        (
            "checks:\n  x: {provider: router}\n",
            "shipyard.yaml:2: checks.x.metric: a router check needs a metric",
        ),
        (
            "checks:\n  x: {metric: error_ratio, judge: threshold}\n",
            "shipyard.yaml:2: checks.x.threshold: the threshold judge needs threshold.max or .min, "
            "or compare: baseline with max_increase",
        ),
        (
            "checks:\n  x:\n    metric: error_ratio\n    negligible_increase: 1\n",
            "shipyard.yaml:4: checks.x.negligible_increase: Input should be less than 1",
        ),
        (
            "checks:\n  x:\n    metric: error_ratio\n    negligible_increase: -0.01\n",
            "shipyard.yaml:4: checks.x.negligible_increase: "
            "Input should be greater than or equal to 0",
        ),
        (
            "checks:\n  x:\n    metric: error_ratio\n    negligible_increase: lots\n",
            "shipyard.yaml:4: checks.x.negligible_increase: "
            "Input should be a valid number, unable to parse string as a number",
        ),
        (
            "checks:\n  x:\n    metric: latency_p95\n    negligible_increase: 0.01\n",
            "shipyard.yaml:4: checks.x.negligible_increase: "
            "only error_ratio checks of the sequential judge take it",
        ),
        (
            "checks:\n  x: {metric: error_ratio, judge: mann_whitney, negligible_increase: 0.01}\n",
            "shipyard.yaml:2: checks.x.negligible_increase: "
            "only error_ratio checks of the sequential judge take it",
        ),
        (
            "checks:\n  x:\n    metric: error_rate\n",
            "shipyard.yaml:3: checks.x.metric: Input should be 'error_ratio', 'latency_p50', "
            "'latency_p95', 'latency_p99' or 'request_rate'",
        ),
    ],
)
def test_policy_and_check_mistakes(text: str, message: str) -> None:
    assert error(text) == message


def test_flag_router_takes_sub_percent_weights_and_names_its_flag() -> None:
    cfg = load_config(
        policy(
            "      - set_weight: 0.1\n"
            "      - approval: {required: 2, approvers: [alice]}\n"
            "      - analysis: {checks: [{metric: error_ratio, max_increase: 0.2}]}\n"
            "      - set_weight: 0.5\n"
            "      - set_weight: 100\n",
            "    router: flag\n    flag: new-checkout\n",
        )
    )
    p = cfg.policies["c"]
    assert (p.router, p.flag) == ("flag", "new-checkout")
    assert p.weights == [0.1, 0.5, 100]
    assert p.steps[1].approval is not None and p.steps[1].approval.required == 2
    analysis = p.steps[2].analysis
    assert analysis is not None and not isinstance(analysis.checks[0], str)
    assert analysis.checks[0].metric == "error_ratio"


FLAG = "    router: flag\n    flag: f\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            policy("      - set_weight: 1\n", "    router: flag\n"),
            "shipyard.yaml:2: policies.c.flag: router: flag needs the flag to move (flag: KEY)",
        ),
        (
            policy("      - set_weight: 1\n", "    flag: f\n"),
            "shipyard.yaml:3: policies.c.flag: only router: flag policies take a flag",
        ),
        (
            policy("      - set_weight: 1\n", "    router: flag\n    flag: 'no spaces'\n"),
            "shipyard.yaml:4: policies.c.flag: String should match pattern "
            "'^[A-Za-z0-9][A-Za-z0-9._~-]{0,99}$'",
        ),
        (
            policy("      - set_weight: 0.00001\n", FLAG),
            "shipyard.yaml:6: policies.c.steps[0].set_weight: a flag rollout takes at most "
            "4 decimals (1 in a million users)",
        ),
        (
            policy("      - mirror: {percent: 10}\n", FLAG),
            "shipyard.yaml:6: policies.c.steps[0]: router: flag cannot mirror; "
            "target users with the flag's constraints instead",
        ),
        (
            policy("      - segment: {match: {path: {prefix: /a}}}\n", FLAG),
            "shipyard.yaml:6: policies.c.steps[0]: router: flag cannot segment; "
            "target users with the flag's constraints instead",
        ),
    ],
)
def test_flag_router_mistakes(text: str, message: str) -> None:
    assert error(text) == message


def test_blue_green() -> None:
    cfg = load_config(
        "checks:\n  smoke: {metric: error_ratio, judge: threshold, threshold: {max: 0.01}}\n"
        "policies:\n  bg:\n    strategy: blue_green\n    preview_checks: [smoke]\n"
        "    keep_old_for: 2h\n    auto_switch: true\n    steps:\n      - pause: {}\n"
    )
    p = cfg.policies["bg"]
    assert (p.strategy, p.preview_checks, p.keep_old_for, p.auto_switch) == (
        "blue_green",
        ["smoke"],
        7200,
        True,
    )
    assert p.steps[0].pause is not None and p.steps[0].pause.duration is None


def test_defaults() -> None:
    cfg = load_config("policies:\n  c: {}\nchecks:\n  e: {metric: error_ratio}\n")
    p = cfg.policies["c"]
    assert (p.strategy, p.router, p.steps, p.weights) == ("canary", "haproxy", [], [100])
    c = cfg.checks["e"]
    assert (c.provider, c.judge, c.alpha, c.interval, c.dry_run) == (
        "router",
        "sequential",
        0.02,
        60,
        False,
    )
    assert c.effective_failure_limit == 0
    assert c.negligible_increase is None  # the judge's default, 0.001


def test_negligible_increase_reaches_the_check_spec() -> None:
    from shipyard.services.project_config import rollout_policy

    text = (
        "environments:\n  - name: prod\n    router: {port: 8080}\n    policy: c\n"
        "checks:\n  e: {metric: error_ratio, negligible_increase: 0.005}\n"
        "policies:\n  c:\n    steps: [{analysis: {checks: [e, {metric: error_ratio}]}}]\n"
    )
    assert load_config(text).checks["e"].negligible_increase == 0.005
    policy = rollout_policy(text, "prod")
    assert policy is not None
    named, inline = policy.steps[0].checks
    assert (named.negligible_increase, inline.negligible_increase) == (0.005, None)
