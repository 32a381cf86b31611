from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config.durations import parse_duration
from shipyard.config.loader import load_config, load_config_file
from shipyard.config.schema import CronFreeze, RangeFreeze, RequiresAnyOf
from shipyard.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(text)
    return str(info.value)


def test_no_file_gives_defaults(tmp_path: Path) -> None:
    for cfg in (
        load_config(""),
        load_config("# only a comment\n"),
        load_config_file(tmp_path / "x"),
    ):
        assert cfg.project is None
        assert cfg.mainline == "main"
        assert cfg.versioning.scheme == "semver"
        assert cfg.versioning.initial == "0.1.0"
        assert cfg.versioning.bump == "minor"
        assert cfg.versioning.tag_prefix == ""
        assert cfg.build.command is None
        assert cfg.build.artifacts == ["**/*"]
        assert cfg.build.timeout == 1800
        assert cfg.delivery == "two-step"
        assert cfg.environments == []
        assert cfg.policies == {}
        assert cfg.checks == {}


def test_release_management_fields() -> None:
    cfg = load_config(
        "project: shop\nmainline: trunk\n"
        "versioning: {scheme: calver, tag_prefix: v}\n"
        "build:\n  command: make\n  artifacts: ['dist/*']\n  timeout: 1h30m\n  env: {A: b}\n"
    )
    assert cfg.project == "shop"
    assert cfg.mainline == "trunk"
    assert cfg.versioning.scheme == "calver"
    assert cfg.versioning.tag_prefix == "v"
    assert cfg.build.command == "make"
    assert cfg.build.artifacts == ["dist/*"]
    assert cfg.build.timeout == 5400
    assert cfg.build.env == {"A": "b"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("2m", 120),
        ("1h30m", 5400),
        ("3d", 259200),
        ("1w", 604800),
        (45, 45),
        ("500ms", 0.5),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "2 minutes", "1x", "m5", "-3s", True, -1])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_full_example_loads_with_the_right_values() -> None:
    cfg = load_config_file(ROOT / "examples" / "continuous-delivery" / "shipyard.yaml")
    assert cfg.project == "shop"
    assert cfg.delivery == "single-step"
    staging, prod = cfg.environments
    assert staging.name == "staging"
    assert staging.target.kind == "local"
    assert staging.target.settings()["instances"] == 2
    assert staging.auto_promote is True
    assert prod.requires == ["staging"]
    assert prod.target.settings() == {
        "start": "python3 app.py",
        "instances": 3,
        "health": "/healthz",
    }
    assert prod.router is not None and (prod.router.kind, prod.router.port) == ("haproxy", 8080)
    assert cfg.prometheus is not None and cfg.prometheus.address == "http://127.0.0.1:9090"
    assert prod.approval is not None
    assert prod.approval.required == 1
    assert prod.approval.approvers == ["role:approver"]
    assert prod.approval.expires_after == 86400
    assert prod.approval.allow_authors is False
    weekly, holidays = prod.freeze
    assert isinstance(weekly, CronFreeze)
    assert (weekly.cron, weekly.duration, weekly.timezone) == (
        "0 18 * * 5",
        63 * 3600,
        "Europe/Berlin",
    )
    assert isinstance(holidays, RangeFreeze)
    assert holidays.start.isoformat() == "2026-12-23T00:00:00+01:00"
    assert prod.policy == "canary"
    policy = cfg.policies["canary"]
    assert policy.strategy == "canary"
    assert policy.router == "haproxy"
    assert [s.kind for s in policy.steps] == [
        "set_weight",
        "analysis",
        "set_weight",
        "pause",
        "analysis",
        "set_weight",
        "pause",
    ]
    assert policy.weights == [5, 25, 50, 100]
    assert policy.steps[3].pause is not None and policy.steps[3].pause.duration == 300
    assert policy.steps[6].pause is not None and policy.steps[6].pause.duration is None
    analysis = policy.steps[1].analysis
    assert analysis is not None and analysis.checks == ["errors", "latency"]
    assert (analysis.interval, analysis.duration) == (60, 600)
    assert cfg.checks["errors"].metric == "error_ratio"
    assert cfg.checks["errors"].effective_failure_limit == 0
    assert cfg.checks["latency"].judge == "mann_whitney"
    assert cfg.checks["checkout"].threshold is not None
    assert cfg.checks["checkout"].threshold.max == 0.5
    assert cfg.checks["checkout"].effective_failure_limit == 2


def test_minimal_example_loads() -> None:
    cfg = load_config_file(ROOT / "examples" / "minimal" / "shipyard.yaml")
    assert [e.name for e in cfg.environments] == ["production"]
    assert cfg.build.command == "make dist"


def test_every_example_loads() -> None:
    files = sorted((ROOT / "examples").glob("**/shipyard.yaml"))
    assert len(files) >= 2
    for f in files:
        load_config_file(f)


def test_docs_example_loads() -> None:
    text = (ROOT / "docs" / "shipyard-yaml.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = load_config(block)
    assert cfg.environments


def test_requires_any_of() -> None:
    cfg = load_config(
        "environments:\n  - name: eu\n  - name: us\n"
        "  - name: global\n    requires: {any_of: [eu, us], at_least: 2}\n"
    )
    assert cfg.environments[2].requires == RequiresAnyOf(any_of=["eu", "us"], at_least=2)
    assert cfg.environments[2].required_names == ["eu", "us"]
    assert cfg.environment("us") is cfg.environments[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("versioning:\n  schem: calver\n", "shipyard.yaml:2: versioning.schem: unknown field"),
        (
            "environments:\n  - name: a\n  - name: b\n    approval:\n      required: 0\n",
            "shipyard.yaml:5: environments[1].approval.required: Input should be greater than or equal to 1",
        ),
        (
            "environments:\n  - name: staging\n    requires: [production]\n  - name: production\n",
            "shipyard.yaml:3: environments[0].requires[0]: 'production' must name an earlier environment",
        ),
        (
            "environments:\n  - name: eu\n  - name: us\n  - name: prod\n"
            "    requires: {any_of: [eu, asia], at_least: 1}\n",
            "shipyard.yaml:5: environments[2].requires.any_of[1]: 'asia' must name an earlier environment",
        ),
        (
            "environments:\n  - name: a\n  - name: a\n",
            "shipyard.yaml:3: environments[1].name: 'a' is declared twice",
        ),
        (
            "environments:\n  - name: a\n    freeze:\n      - cron: '0 25 * * *'\n        duration: 1h\n",
            "shipyard.yaml:4: environments[0].freeze[0].cron: "
            "'0 25 * * *' is not a 5-field cron expression like '0 18 * * 5'",
        ),
        (
            "environments:\n  - name: a\n    freeze:\n"
            "      - {cron: '0 18 * * 5', duration: 63h, timezone: Mars/Base}\n",
            "shipyard.yaml:4: environments[0].freeze[0].timezone: "
            "'Mars/Base' is not an IANA time zone like Europe/Berlin",
        ),
        (
            "environments:\n  - name: a\n    freeze:\n"
            "      - {from: '2026-12-23T00:00:00+01:00', to: '2026-12-01T00:00:00+01:00'}\n",
            "shipyard.yaml:4: environments[0].freeze[0].to: must be after from",
        ),
        (
            "environments:\n  - name: a\n    freeze:\n"
            "      - {from: '2026-12-23T00:00:00', to: '2026-12-24T00:00:00'}\n",
            "shipyard.yaml:4: environments[0].freeze[0].from: "
            "needs a UTC offset, e.g. 2026-12-24T00:00:00+01:00",
        ),
        (
            "environments:\n  - name: a\n    policy: nope\n",
            "shipyard.yaml:3: environments[0].policy: no policy named 'nope'",
        ),
        (
            "environments:\n  - target: {kind: local}\n",
            "shipyard.yaml:2: environments[0].name: required field is missing",
        ),
        (
            "environments:\n  - name: Prod Env\n",
            "shipyard.yaml:2: environments[0].name: "
            "'Prod Env' is not a slug: lowercase letters, digits, - and _, at most 63",
        ),
        (
            "environments:\n  - name: a\n    target: {kind: local, instance: 2}\n",
            "shipyard.yaml:3: environments[0].target.instance: unknown field for a local target",
        ),
        (
            "environments:\n  - name: a\n    target:\n      kind: command\n      health: x\n",
            "shipyard.yaml:3: environments[0].target.deploy: the command target needs a deploy command",
        ),
        (
            "build:\n  timeout: soon\n",
            "shipyard.yaml:2: build.timeout: 'soon' is not a duration like 90s, 2m, 1h30m or 3d",
        ),
        (
            "versioning: {initial: v1}\n",
            "shipyard.yaml:1: versioning.initial: 'v1' is not a semver version like 0.1.0",
        ),
        (
            "versioning: {scheme: date}\n",
            "shipyard.yaml:1: versioning.scheme: Input should be 'semver' or 'calver'",
        ),
        ("mainline: main\nmainline: trunk\n", "shipyard.yaml:2: mainline: duplicate key"),
        (
            "project: shop\nbuild: [\n",
            "shipyard.yaml:3: (yaml): expected the node content, but found '<stream end>'",
        ),
        ("- a\n", "shipyard.yaml:1: (root): the file must be a mapping of fields"),
    ],
)
def test_mistakes_name_file_line_and_field(text: str, message: str) -> None:
    assert error(text) == message


def test_error_carries_its_parts() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("\n\nbuild:\n  timout: 3m\n", file="repo/shipyard.yaml")
    e = info.value
    assert (e.file, e.line, e.field, e.reason) == (
        "repo/shipyard.yaml",
        4,
        "build.timout",
        "unknown field",
    )
    assert e.details["line"] == 4


def test_target_durations_reach_adapters_as_seconds() -> None:
    cfg = load_config(
        "environments:\n  - name: a\n    target: {kind: local, start: x, health_timeout: 2m}\n"
        "  - name: b\n    target: {kind: command, deploy: d, timeout: 1h}\n"
        "  - name: c\n    target: {kind: memory, namespace: shop}\n"
    )
    a, b, c = cfg.environments
    assert a.target.settings() == {"start": "x", "health_timeout": 120.0}
    assert b.target.settings() == {"deploy": "d", "timeout": 3600.0}
    assert (c.target.kind, c.target.settings()) == ("memory", {"namespace": "shop"})


def test_empty_sections_mean_defaults() -> None:
    cfg = load_config("versioning:\nbuild:\nenvironments:\npolicies:\nchecks:\n")
    assert cfg == load_config("")


def test_package_exports() -> None:
    import shipyard.config as config

    assert config.load_config("mainline: trunk\n").mainline == "trunk"
    assert config.parse_duration("1m") == 60
