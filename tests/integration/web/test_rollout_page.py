"""The rollout page with a real runtime: the engine runs a policy through the memory router.

The memory target and memory router stand in for processes and HAProxy (tests/e2e runs the real
ones); the clock is fixed and moved by hand, so every step and measurement is exact.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipyard.adapters.clock import FixedClock
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import SYSTEM, Actor, Role
from shipyard.domain.rollouts import Phase
from shipyard.ports.routers import RouteRef
from shipyard.sdk import FlagClient, StaticFlagSource
from shipyard.sdk.metrics import report_body
from shipyard.services import cohorts, deployments, flags, releases, rollouts, tokens
from tests.integration.web.conftest import client_of, csrf_of
from tests.support.gitrepo import GitRepo
from tests.support.runtime import first_candidate, memory_runtime, role_tokens, shop_repo, shop_yaml

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ADA = Actor("ada", Role.DEPLOYER)
WEB = Actor("web", Role.APP)  # the application that reports its cohorts
PAGE = "/ui/projects/shop/environments/production/rollout"

CONFIG = shop_yaml("""\
environments:
  - name: staging
    target: {kind: memory}
  - name: production
    target: {kind: memory}
    router: {port: 18998}
    policy: canary
policies:
  canary:
    steps:
      - set_weight: 10
      - analysis: {checks: [errors], interval: 10s, duration: 30s}
      - set_weight: 50
      - pause: {}
checks:
  errors: {metric: error_ratio, judge: threshold, threshold: {max: 0.05}}
""")


@dataclass
class Canary:
    """rc.1 serves production at 100%; rc.2 is being rolled out at 10%, analysis running."""

    runtime: Runtime
    router: MemoryRouter
    clock: FixedClock
    tokens: dict[str, str]
    stable: str
    canary: str
    deployment_id: int
    repo: GitRepo

    def client(self, role: str) -> TestClient:
        return client_of(self.runtime, self.tokens[role])

    def serve(self, canary_errors: int) -> None:
        """Ten seconds of traffic: 100 requests on the canary, 900 on the stable version."""
        ref = RouteRef(
            "shop", "production", self.runtime.services.state_dir / "shop/production/router", 18998
        )
        self.router.serve(ref, self.canary, 100, canary_errors, [0.02] * 95 + [0.2] * 5)
        self.router.serve(ref, self.stable, 900, 9, [0.01] * 900)
        self.clock.advance(seconds=10)
        self.runtime.worker().drain()

    def phase(self) -> Phase:
        return rollouts.status(self.runtime.services, ADA, "shop", "production").rollout.phase


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Canary]:
    clock, router = FixedClock(T0), MemoryRouter()
    with memory_runtime(tmp_path, clock=clock, router=router) as rt:
        svc = rt.services
        repo = shop_repo(tmp_path, CONFIG)
        made = role_tokens(svc)
        rc1 = first_candidate(rt, repo, ADA)
        deployments.deploy(svc, ADA, "shop", rc1, "production")
        rt.worker().drain()
        fix = repo.commit("fix: rounding (#5)", {"app.py": "V = 2\n"})
        rc2 = releases.pick(svc, ADA, "shop", "1.0.0", [fix])
        rt.worker().drain()
        d = deployments.deploy(svc, ADA, "shop", rc2.name, "production")
        rt.worker().drain()
        yield Canary(rt, router, clock, made, rc1, rc2.name, d.id, repo)


def steps_of(html: str) -> list[tuple[str, str]]:
    """(state, description) of every policy step on the page."""
    found = re.findall(
        r'data-state="(\w+)".*?<span class="step-text">([^<]+)</span>', html, flags=re.S
    )
    return [(state, text.strip()) for state, text in found]


def test_the_page_shows_steps_weight_versions_and_decisions(canary: Canary) -> None:
    canary.serve(canary_errors=1)
    page = canary.client("viewer").get(PAGE)
    assert page.status_code == 200
    html = page.text
    assert 'data-phase="progressing"' in html
    assert '<div class="weight" id="rollout-weight">10%</div>' in html
    assert steps_of(html) == [
        ("done", "set weight 10%"),
        ("current", "analysis: errors"),
        ("pending", "set weight 50%"),
        ("pending", "pause until promoted"),
    ]
    assert canary.canary in html and canary.stable in html
    assert 'data-src="/ui/projects/shop/environments/production/rollout/panel"' in html
    assert 'data-refresh="2000"' in html
    # p95 of the interval just measured, from the histogram, not a whole-ms average
    canary_row = html.split('<tr data-role="canary">')[1].split("</tr>")[0]
    assert '<td class="num p95">25 ms</td>' in canary_row
    stable_row = html.split('<tr data-role="stable">')[1].split("</tr>")[0]
    assert '<td class="num p95">9.8 ms</td>' in stable_row
    assert "Avg" not in html
    decisions = re.findall(r'class="decision [^"]*" data-kind="(\w+)"', html)
    assert decisions == ["weight", "started"]  # newest first
    assert 'aria-label="canary weight over time"' in html
    assert "<polyline" in html


def test_a_viewer_sees_no_buttons_a_deployer_and_an_approver_do(canary: Canary) -> None:
    viewer = canary.client("viewer").get(PAGE).text
    assert 'action="/ui/projects/shop/environments/production/rollout/pause"' not in viewer
    assert "<button" not in viewer.split('id="rollout"')[1]
    for role in ("deployer", "approver", "admin"):
        html = canary.client(role).get(PAGE).text
        for action in ("pause", "promote", "abort"):
            assert f'action="{PAGE}/{action}"' in html, (role, action)
        assert f'action="{PAGE}/resume"' not in html  # nothing to resume while it progresses
        assert ">Promote to 100%</button>" in html


def test_the_panel_fragment_is_only_the_rollout(canary: Canary) -> None:
    client = canary.client("viewer")
    panel = client.get(f"{PAGE}/panel")
    assert panel.status_code == 200
    assert panel.text.lstrip().startswith('<section id="rollout"')
    assert "<html" not in panel.text and "topbar" not in panel.text
    canary.serve(canary_errors=1)
    canary.serve(canary_errors=1)
    canary.serve(canary_errors=1)  # the analysis passed: weight 50, paused
    panel = client.get(f"{PAGE}/panel").text
    assert '<div class="weight" id="rollout-weight">50%</div>' in panel
    assert 'data-phase="paused"' in panel
    assert "paused until promoted" in panel
    assert 'data-kind="analysis"' in panel and "analysis passed" in panel
    passed = panel.split('data-kind="analysis"')[1].split("</li>")[0]
    assert "&#34;values&#34;: [0.01, 0.01, 0.01]" in passed  # the evidence, on one line
    # the passed analysis's three intervals stay on the charts: 1% errors on both versions
    assert f'canary {canary.canary}: <strong class="last-canary">1.00%</strong>' in panel
    assert f'stable {canary.stable}: <strong class="last-stable">1.00%</strong>' in panel


def test_pausing_through_the_form_and_resuming(canary: Canary) -> None:
    client = canary.client("deployer")
    done = client.post(f"{PAGE}/pause", data={"csrf": csrf_of(client, PAGE)})
    assert done.status_code == 303, done.text
    [rollout_id] = re.findall(r"notice=paused\.(\d+)$", done.headers["location"])
    assert canary.phase() is Phase.PAUSED
    page = client.get(done.headers["location"]).text
    assert f"You paused the rollout of {canary.canary}; it is now paused." in page
    assert f'action="{PAGE}/resume"' in page and f'action="{PAGE}/pause"' not in page
    done = client.post(f"{PAGE}/resume", data={"csrf": csrf_of(client, PAGE)})
    assert done.status_code == 303
    assert canary.phase() is Phase.PROGRESSING
    assert rollout_id


def test_a_steering_post_without_csrf_changes_nothing(canary: Canary) -> None:
    client = canary.client("deployer")
    for data in ({}, {"csrf": "0" * 64}):
        refused = client.post(f"{PAGE}/abort", data=data)
        assert refused.status_code == 403
        assert "security token is missing or stale" in refused.text
    assert canary.phase() is Phase.PROGRESSING


def test_a_viewer_posting_anyway_gets_the_apis_403(canary: Canary) -> None:
    client = canary.client("viewer")
    refused = client.post(f"{PAGE}/abort", data={"csrf": csrf_of(client, PAGE)})
    assert refused.status_code == 403
    assert "flash-error" in refused.text
    assert canary.phase() is Phase.PROGRESSING


def test_a_failing_canary_shows_rolled_back_with_the_failing_evidence(canary: Canary) -> None:
    canary.serve(canary_errors=20)
    canary.serve(canary_errors=20)  # 20% errors twice: the threshold check fails
    client = canary.client("deployer")
    html = client.get(PAGE).text
    assert 'data-phase="rolled_back"' in html
    assert 'data-refresh="5000"' in html  # slowly: only the next rollout will change it
    assert steps_of(html)[1] == ("failed", "analysis: errors")
    assert "<button" not in html.split('id="rollout"')[1]  # nothing to steer any more
    assert "analysis failed: errors: 2 of 2 measurements failed (limit 1)" in html
    aborting = html.split('data-kind="aborting"')[1].split("</li>")[0]
    assert 'verdict-fail">fail</span>' in aborting
    assert "0.2 &gt; max 0.05" in aborting
    # two intervals of measurements; the canary's error ratio is 20.00% in both
    assert "canary " + canary.canary + ": <strong" in html and "20.00%" in html
    refused = client.post(f"{PAGE}/pause", data={"csrf": csrf_of(client, PAGE)})
    assert refused.status_code == 404  # no rollout in progress: the API's status
    assert "no rollout in progress" in refused.text


def test_the_latest_finished_rollout_and_the_deployment_link(canary: Canary) -> None:
    rollouts.abort(canary.runtime.services, ADA, "shop", "production", reason="pager")
    canary.runtime.worker().drain()
    client = canary.client("viewer")
    html = client.get(PAGE).text
    assert 'data-phase="rolled_back"' in html and "aborted by ada: pager" in html
    deployment = client.get(f"/ui/deployments/{canary.deployment_id}").text
    link = f'{PAGE}?deployment={canary.deployment_id}"'
    assert link in deployment
    by_id = client.get(f"{PAGE}?deployment={canary.deployment_id}")
    assert by_id.status_code == 200 and "aborted by ada: pager" in by_id.text
    assert f"{PAGE}/panel?deployment={canary.deployment_id}" in by_id.text
    assert 'data-refresh="0"' in by_id.text  # pinned to an ended rollout: nothing to follow


def test_a_finished_page_keeps_a_slow_refresh_and_picks_up_the_next_rollout(
    canary: Canary,
) -> None:
    svc = canary.runtime.services
    client = canary.client("viewer")
    assert 'data-refresh="2000"' in client.get(f"{PAGE}/panel").text
    rollouts.abort(svc, ADA, "shop", "production", reason="pager")
    canary.runtime.worker().drain()
    panel = client.get(f"{PAGE}/panel").text
    assert 'data-refresh="5000"' in panel and 'data-phase="rolled_back"' in panel
    [ended] = re.findall(r'data-subject="(rollout-\d+)"', panel)
    pinned = f"{PAGE}/panel?deployment={canary.deployment_id}"
    assert 'data-refresh="0"' in client.get(pinned).text
    fix = canary.repo.commit("fix: retry (#6)", {"app.py": "V = 3\n"})
    rc3 = releases.pick(svc, ADA, "shop", "1.0.0", [fix])
    canary.runtime.worker().drain()
    d3 = deployments.deploy(svc, ADA, "shop", rc3.name, "production")
    canary.runtime.worker().drain()
    panel = client.get(f"{PAGE}/panel").text  # what the finished page's next refresh gets
    assert 'data-phase="progressing"' in panel and 'data-refresh="2000"' in panel
    [started] = re.findall(r'data-subject="(rollout-\d+)"', panel)
    assert started != ended  # the page clears a flash that spoke of the ended one
    assert f'<a href="/ui/deployments/{d3.id}">{d3.id}</a>' in panel
    assert f'{rc3.name}</a> <span class="badge canary-badge">new</span>' in panel
    still = client.get(pinned).text  # the deployment's page stays on its own rollout
    assert 'data-phase="rolled_back"' in still and 'data-refresh="0"' in still


def test_no_rollout_and_unknown_environment(canary: Canary) -> None:
    client = canary.client("viewer")
    staging = client.get("/ui/projects/shop/environments/staging/rollout")
    assert staging.status_code == 200 and "No rollout in staging" in staging.text
    assert client.get("/ui/projects/shop/environments/moon/rollout").status_code == 404
    assert client.get("/ui/projects/shop/environments/moon/rollout/panel").status_code == 404
    assert client.get(f"{PAGE}?deployment=999").status_code == 404


def test_an_unknown_command_is_refused_and_changes_nothing(canary: Canary) -> None:
    client = canary.client("deployer")
    refused = client.post(f"{PAGE}/explode", data={"csrf": csrf_of(client, PAGE)})
    assert refused.status_code == 404
    assert "no rollout command &#39;explode&#39;" in refused.text and "<html" in refused.text
    assert canary.phase() is Phase.PROGRESSING


# ---- a flag-routed rollout: no proxy, the engine moves a flag, the app's SDK reports cohorts ----

FLAG = "new-checkout"
FLAG_CONFIG = shop_yaml("""\
environments:
  - name: production
    target: {kind: memory}
    policy: dark-launch
policies:
  dark-launch:
    router: flag
    flag: new-checkout
    steps:
      - set_weight: 0.1
      - analysis: {checks: [errors], interval: 10s, duration: 20s}
      - set_weight: 1
      - analysis: {checks: [errors], interval: 10s, duration: 20s}
checks:
  errors: {metric: error_ratio, judge: threshold, threshold: {max: 0.05}}
""")
USERS = [f"user-{i}" for i in range(20_000)]


@dataclass
class DarkLaunch:
    """rc.1 was deployed dark behind ``new-checkout``: the engine set the flag to 0.1%."""

    runtime: Runtime
    clock: FixedClock
    token: str
    candidate: str

    def client(self) -> TestClient:
        return client_of(self.runtime, self.token)

    def app_traffic(self, error_every: int = 0) -> int:
        """Every user makes one request through the real SDK, which reports like an app would;
        then ten seconds pass and the engine runs. ``error_every``: every n-th on-user fails,
        and one in a thousand off-users always does. Returns the flag-on cohort's size."""
        svc = self.runtime.services
        _, doc = flags.state(svc, ADA, "shop", "production")
        sdk = FlagClient(StaticFlagSource(doc), refresh_interval=0)
        sdk.refresh()
        on = 0
        for n, user in enumerate(USERS):
            ctx = {"userId": user}
            if sdk.is_enabled(FLAG, ctx):
                on += 1
                if error_every and on % error_every == 0:
                    sdk.record_outcome(FLAG, "error", ctx)
            elif n % 1000 == 0:
                sdk.record_outcome(FLAG, "error", ctx)
        body = report_body(sdk.drain_metrics())
        cohorts.report(svc, WEB, "shop", "production", uuid.uuid4().hex, body)
        self.clock.advance(seconds=10)
        self.runtime.worker().drain()
        return on


@pytest.fixture
def dark(tmp_path: Path) -> Iterator[DarkLaunch]:
    clock = FixedClock(T0)
    with memory_runtime(tmp_path, clock=clock) as rt:
        svc = rt.services
        repo = shop_repo(tmp_path, FLAG_CONFIG)
        _, token = tokens.create_token(svc, SYSTEM, user="vera", role=Role.VIEWER.value)
        rc = first_candidate(rt, repo, ADA)
        flags.create_flag(svc, ADA, "shop", "production", FLAG, enabled=True, rollout=0)
        deployments.deploy(svc, ADA, "shop", rc, "production")
        rt.worker().drain()
        yield DarkLaunch(rt, clock, token, rc)


def cohort_rows(html: str) -> list[tuple[str, str, int, int]]:
    """(variant, cohort, exposures, errors) of every row of the Cohorts table."""
    found = re.findall(
        r'<tr data-variant="([\w-]+)".*?<td>flag (on|off)</td>\s*'
        r'<td class="num">(\d+)</td><td class="num">(\d+)</td>',
        html,
        flags=re.S,
    )
    return [(variant, cohort, int(n), int(k)) for variant, cohort, n, k in found]


def test_a_flag_rollout_shows_the_flag_its_exact_share_and_the_cohorts(dark: DarkLaunch) -> None:
    on = dark.app_traffic()
    html = dark.client().get(PAGE).text
    assert 'data-phase="progressing"' in html
    assert '<code id="rollout-flag">new-checkout</code>' in html and "in production" in html
    assert '<div class="weight" id="rollout-weight">0.1%</div>' in html  # not rounded to 0%
    assert '<div class="muted small">of users</div>' in html
    assert "Served at" not in html and "<h2>Versions</h2>" not in html  # no proxy here
    assert 5 <= on <= 60
    assert cohort_rows(html) == [
        ("enabled", "on", on, 0),
        ("disabled", "off", len(USERS) - on, 20),
    ]
    assert steps_of(html)[:2] == [("done", "set weight 0.1%"), ("current", "analysis: errors")]
    assert 'aria-label="flag share of users over time"' in html
    # the share axis has a tick per decade: 0.1% and 1% are apart, not both on the floor
    axis = html.split('id="chart-weight"')[1].split("</svg>")[0]
    labels = re.findall(r'<text class="axis y-tick"[^>]*>([^<]+)</text>', axis)
    assert labels == ["0%", "0.1%", "1%", "10%", "100%"]
    assert f'flag {FLAG} share: <strong class="last-weight">0.1%</strong>' in html
    assert 'id="chart-latency"' not in html  # the SDK does not time requests
    dark.app_traffic()
    dark.app_traffic()  # the first analysis passed: 1% of users
    html = dark.client().get(f"{PAGE}/panel").text
    assert '<div class="weight" id="rollout-weight">1%</div>' in html
    assert f'flag {FLAG} off: <strong class="last-stable">0.10%</strong>' in html
    assert f'flag {FLAG} on: <strong class="last-canary">0.00%</strong>' in html


def test_a_rolled_back_flag_rollout_shows_zero_percent_and_the_failing_evidence(
    dark: DarkLaunch,
) -> None:
    for _ in range(3):
        dark.app_traffic(error_every=4)  # a quarter of the flag-on users fail
    html = dark.client().get(PAGE).text
    assert 'data-phase="rolled_back"' in html and 'data-refresh="5000"' in html
    assert '<div class="weight" id="rollout-weight">0%</div>' in html
    assert "on for 0% of users" in html and f"rolled back: {FLAG} off for everyone" in html
    assert steps_of(html)[1] == ("failed", "analysis: errors")
    assert "analysis failed: errors: 2 of 2 measurements failed (limit 1)" in html
    aborting = html.split('data-kind="aborting"')[1].split("</li>")[0]
    assert 'verdict-fail">fail</span>' in aborting and "&gt; max 0.05" in aborting
    assert re.search(
        rf'flag {FLAG} on: <strong class="last-canary">(2\d|3\d)\.\d\d%</strong>', html
    )
    assert cohort_rows(html) == []  # ended: cumulative counters would mix in later traffic


def test_the_page_shows_an_error_streak_and_the_action_a_pause_waits_for(canary: Canary) -> None:
    MemoryTarget.live[("shop", "production")].discard(canary.stable)  # its instance died
    canary.clock.advance(seconds=10)
    canary.runtime.worker().drain()
    html = canary.client("viewer").get(PAGE).text
    errors = html.split('id="rollout-errors">')[1].split("</dd>")[0]
    assert f"{canary.stable} has no running instance to send traffic to" in errors
    assert "(1 of 4 in a row" in errors
    client = canary.client("deployer")
    client.post(f"{PAGE}/pause", data={"csrf": csrf_of(client, PAGE)})
    html = client.get(PAGE).text
    assert "<dt>Waiting for</dt>" in html and "<code>shipyard rollout resume</code>" in html
