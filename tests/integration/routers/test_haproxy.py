"""The HAProxy router against a real HAProxy 2.6 and two stdlib versions on 127.0.0.1."""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from shipyard.adapters.routers.haproxy import HaproxyCounters, HaproxyRouter, split_weights
from shipyard.adapters.routers.validate import LATENCY_BOUNDS
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.routers import Backend, RoutePlan, RouteRef, SegmentMatch
from tests.integration.routers.conftest import free_port
from tests.support import loadgen
from tests.support.loadgen import Load

StartBackend = Callable[..., Backend]
COUNTERS = HaproxyCounters()  # the metrics side: what each version's HAProxy counted


def url(route: RouteRef) -> str:
    return f"http://127.0.0.1:{route.listen_port}/"


def test_weights_follow_the_plan(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    router.ensure(route)
    for weight in (0, 5, 25, 100):
        plan = RoutePlan(stable=v1, canary=v2, canary_weight=weight)
        router.apply(route, plan)
        assert router.observe(route) == plan
        result = loadgen.run(url(route), requests=400, concurrency=8)
        assert result.failed == 0, result
        share = result.share("v2") * 100
        print(f"canary weight {weight}%: measured {share:.1f}% over {result.total} requests")
        assert abs(share - weight) <= 3, (weight, result.versions)


def test_no_failed_request_while_weights_change(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2, v3 = start_backend("v1"), start_backend("v2"), start_backend("v3")
    router.apply(route, RoutePlan(stable=v1))
    steps = [
        RoutePlan(stable=v1, canary=v2, canary_weight=w) for w in (1, 5, 25, 50, 0, 75, 10, 100)
    ]
    steps += [
        RoutePlan(stable=v1, canary=v3, canary_weight=30),  # canary replaced while it serves
        RoutePlan(stable=v1, canary=v3, canary_weight=100),
        RoutePlan(stable=v3),  # promoted: v3's slots keep their addresses
        RoutePlan(stable=v3, canary=v1, canary_weight=50),
        RoutePlan(stable=v1, canary=v3, canary_weight=0.5),
    ]
    with Load(url(route), seconds=10, concurrency=8) as load:
        time.sleep(0.2)
        for _ in range(2):
            for plan in steps:
                router.apply(route, plan)
                assert router.observe(route) == plan
                time.sleep(0.1)
        result = load.stop()
    print(f"weight changes under load: {result.total} requests, {result.failed} failed")
    assert result.total > 500
    assert result.failed == 0, result
    assert set(result.versions) == {"v1", "v2", "v3"}


def test_reset_to_stable_takes_effect_within_a_second(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    router.apply(route, RoutePlan(stable=v1, canary=v2, canary_weight=50))
    with Load(url(route), seconds=5, concurrency=4) as load:
        time.sleep(0.2)
        started = time.monotonic()
        router.apply(route, RoutePlan(stable=v1, canary=v2, canary_weight=0))
        applied = time.monotonic() - started
        after = loadgen.run(url(route), requests=100, concurrency=4)
        result = load.stop()
    print(f"reset to 100% stable took {applied * 1000:.1f} ms")
    assert applied < 1.0
    assert after.versions == {"v1": 100}
    assert result.failed == 0


def test_header_segment_sends_all_matching_requests_to_the_canary(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    segment = SegmentMatch("header", "X-Segment", "beta")
    plan = RoutePlan(stable=v1, canary=v2, canary_weight=0, segment=segment)
    router.apply(route, plan)
    assert router.observe(route) == plan
    beta = loadgen.run(url(route), requests=50, headers={"x-segment": "beta"})
    other = loadgen.run(url(route), requests=50, headers={"X-Segment": "betamax"})
    plain = loadgen.run(url(route), requests=50)
    assert beta.versions == {"v2": 50}
    assert other.versions == {"v1": 50}
    assert plain.versions == {"v1": 50}
    # present-only header match, and switching the segment off again
    router.apply(route, RoutePlan(stable=v1, canary=v2, segment=SegmentMatch("header", "X-Beta")))
    assert loadgen.run(url(route), requests=20, headers={"X-Beta": "x"}).versions == {"v2": 20}
    router.apply(route, RoutePlan(stable=v1, canary=v2))
    assert loadgen.run(url(route), requests=20, headers={"X-Beta": "x"}).versions == {"v1": 20}


def test_cookie_negation_sends_logged_out_users_to_the_canary(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    segment = SegmentMatch("cookie", "session", negate=True)
    plan = RoutePlan(stable=v1, canary=v2, canary_weight=0, segment=segment)
    router.apply(route, plan)
    assert router.observe(route) == plan
    logged_in = loadgen.run(url(route), requests=50, cookies={"theme": "dark", "session": "abc"})
    logged_out = loadgen.run(url(route), requests=50, cookies={"xsession": "abc"})
    no_cookie = loadgen.run(url(route), requests=50)
    assert logged_in.versions == {"v1": 50}
    assert logged_out.versions == {"v2": 50}
    assert no_cookie.versions == {"v2": 50}


def test_cookie_value_and_path_segments(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    router.apply(
        route, RoutePlan(stable=v1, canary=v2, segment=SegmentMatch("cookie", "canary", "1"))
    )
    assert loadgen.run(url(route), requests=20, cookies={"a": "b", "canary": "1"}).versions == {
        "v2": 20
    }
    assert loadgen.run(url(route), requests=20, cookies={"canary": "10"}).versions == {"v1": 20}
    router.apply(
        route, RoutePlan(stable=v1, canary=v2, segment=SegmentMatch("path", value="/api/"))
    )
    assert loadgen.run(url(route) + "api/x", requests=20).versions == {"v2": 20}
    assert loadgen.run(url(route) + "apix", requests=20).versions == {"v1": 20}


def test_counters_per_version_include_5xx(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2", error_rate=0.2)
    router.apply(route, RoutePlan(stable=v1, canary=v2, canary_weight=50))
    result = loadgen.run(url(route), requests=400)
    counters = COUNTERS.counters(route)
    assert set(counters) == {"v1", "v2"}
    assert counters["v1"].requests + counters["v2"].requests == 400
    assert counters["v1"].errors_5xx == 0
    assert counters["v2"].errors_5xx == result.statuses[500]
    rate = counters["v2"].errors_5xx / counters["v2"].requests
    print(f"v2 5xx rate by counters: {rate:.3f} over {counters['v2'].requests} requests")
    assert 0.1 < rate < 0.3
    # a new candidate in a reused slot group starts from zero
    v3 = start_backend("v3")
    router.apply(route, RoutePlan(stable=v1, canary=v3, canary_weight=50))
    assert COUNTERS.counters(route)["v3"].requests == 0
    assert COUNTERS.counters(route)["v3"].latency_buckets[math.inf] == 0  # v2's are not v3's
    loadgen.run(url(route), requests=40)
    assert COUNTERS.counters(route)["v3"].requests == 20
    assert COUNTERS.counters(route)["v3"].latency_buckets[math.inf] == 20


def test_a_new_instance_adopts_the_running_proxy(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    plan = RoutePlan(stable=v1, canary=v2, canary_weight=12.5)
    router.apply(route, plan)
    loadgen.run(url(route), requests=40)
    before = COUNTERS.counters(route)
    assert before["v1"].latency_buckets[math.inf] == before["v1"].requests > 0
    pid = int((route.state_dir / "haproxy.pid").read_text())
    restarted = HaproxyRouter()  # Shipyard restarted: no Popen, only the state dir
    restarted.ensure(route)
    assert int((route.state_dir / "haproxy.pid").read_text()) == pid
    assert restarted.observe(route) == plan
    assert COUNTERS.counters(route) == before  # the counters, histograms too, live in HAProxy
    restarted.stop(route)
    with pytest.raises(AdapterError, match="not running"):
        restarted.observe(route)
    assert loadgen.run(url(route), requests=5, concurrency=1).errors


def test_reload_and_restart_keep_the_plan(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    plan = RoutePlan(
        stable=v1, canary=v2, canary_weight=25, segment=SegmentMatch("header", "X-Segment", "b")
    )
    router.apply(route, plan)
    v3 = start_backend("v3")
    router.apply(route, RoutePlan(stable=v1, canary=v3, canary_weight=50))  # v2's group
    loadgen.run(url(route), requests=20)  # ... so v2 comes back with a baseline of 10
    router.apply(route, plan)
    assert "base_b 10:0" in (route.state_dir / "meta.map").read_text()
    assert COUNTERS.counters(route)["v2"].requests == 0
    router.reload(route)
    assert router.observe(route) == plan
    assert {c.requests for c in COUNTERS.counters(route).values()} == {0}  # a new worker
    assert {c.latency_buckets[math.inf] for c in COUNTERS.counters(route).values()} == {0}
    assert "base_b 0:0" in (route.state_dir / "meta.map").read_text()
    assert loadgen.run(url(route), requests=20, headers={"X-Segment": "b"}).versions == {"v2": 20}
    router.stop(route)
    router.ensure(route)  # a cold start from the files
    assert router.observe(route) == plan
    result = loadgen.run(url(route), requests=400)
    assert abs(result.share("v2") - 0.25) <= 0.03
    assert COUNTERS.counters(route)["v2"].requests == result.versions["v2"]


def test_scaled_versions_and_fractional_weights(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1 = start_backend("v1", instances=3)
    v2 = start_backend("v2")
    plan = RoutePlan(stable=v1, canary=v2, canary_weight=10.0)
    router.apply(route, plan)
    assert router.observe(route) == plan
    result = loadgen.run(url(route), requests=400)
    assert abs(result.share("v2") - 0.10) <= 0.03
    assert split_weights(0.1, 1, 1) == (256, 1)  # any share above 0 gets at least weight 1
    assert split_weights(25, 1, 1) == (256, 85)
    assert split_weights(100, 1, 1) == (0, 256)


def test_bad_plans_are_refused_with_one_readable_line(
    router: HaproxyRouter, route: RouteRef
) -> None:
    v1 = Backend("v1", ("127.0.0.1:9",))
    bad = {
        "no canary": RoutePlan(stable=v1, canary_weight=10),
        "within 0..100": RoutePlan(
            stable=v1, canary=Backend("v2", ("127.0.0.1:8",)), canary_weight=101
        ),
        "IP:PORT": RoutePlan(stable=Backend("v1", ("localhost:80",))),
        "both v1": RoutePlan(stable=v1, canary=v1),
        "mirroring needs both": RoutePlan(stable=v1, mirror_percent=5),
        "unknown segment kind": RoutePlan(
            stable=v1, canary=Backend("v2", ("127.0.0.1:8",)), segment=SegmentMatch("query", "a")
        ),
        "slots": RoutePlan(stable=Backend("v1", tuple(f"127.0.0.1:{p}" for p in range(10, 19)))),
    }
    for needle, plan in bad.items():
        with pytest.raises(InvalidError, match=needle) as caught:
            router.apply(route, plan)
        assert "\n" not in str(caught.value)
    assert not (route.state_dir / "haproxy.pid").exists()  # refused before starting anything


def test_unhealthy_canary_is_reported(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1 = start_backend("v1")
    fast = HaproxyRouter(ready_timeout=1.0)
    dead = Backend("v2", ("127.0.0.1:9",))  # discard port: nothing listens
    fast.apply(route, RoutePlan(stable=v1))
    with pytest.raises(AdapterError, match="did not accept a connection") as caught:
        fast.apply(route, RoutePlan(stable=v1, canary=dead, canary_weight=10))
    print(caught.value)
    assert fast.observe(route) == RoutePlan(stable=v1)  # nothing changed
    fast.stop(route)


def test_haproxy_is_installed() -> None:
    out = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, check=True).stdout
    assert "HAProxy version 2." in out


def test_ensure_moves_an_adopted_proxy_to_a_new_port(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1 = start_backend("v1")
    router.apply(route, RoutePlan(stable=v1))
    moved = RouteRef(route.project, route.environment, route.state_dir, free_port())
    HaproxyRouter().ensure(moved)
    assert loadgen.run(url(moved), requests=10).versions == {"v1": 10}
    assert router.observe(moved) == RoutePlan(stable=v1)


def mirrored(backend: Backend) -> int:
    return int(httpx.get(f"http://{backend.addresses[0]}/_mirrored", timeout=5).text)


def wait_mirrored(backend: Backend, at_least: int, seconds: float = 3.0) -> int:
    deadline = time.monotonic() + seconds
    while (count := mirrored(backend)) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_mirror_copies_stable_traffic_to_the_canary(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    plan = RoutePlan(stable=v1, canary=v2, canary_weight=0, mirror_percent=100)
    router.apply(route, plan)
    assert router.observe(route) == plan
    result = loadgen.run(url(route), requests=100, concurrency=4)
    assert result.versions == {"v1": 100}  # clients only ever see the stable's answers
    assert wait_mirrored(v2, 100) == 100
    assert mirrored(v1) == 0
    # half of the stable's requests; what the canary serves itself is never copied
    router.apply(route, RoutePlan(stable=v1, canary=v2, canary_weight=50, mirror_percent=50))
    result = loadgen.run(url(route), requests=400, concurrency=4)
    time.sleep(0.3)
    copies = wait_mirrored(v2, 100) - 100
    print(f"mirror 50% of {result.versions['v1']} stable requests: {copies} copies")
    assert 0.35 * result.versions["v1"] < copies < 0.65 * result.versions["v1"]
    router.apply(route, RoutePlan(stable=v1, canary=v2))  # off
    before = mirrored(v2)
    loadgen.run(url(route), requests=50)
    time.sleep(0.2)
    assert mirrored(v2) == before


def test_a_deep_state_dir_keeps_its_sockets_short(
    tmp_path: Path, start_backend: StartBackend
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    route = RouteRef("shop", "prod", deep, free_port())
    router = HaproxyRouter()
    v1 = start_backend("v1")
    try:
        router.apply(route, RoutePlan(stable=v1))
        assert loadgen.run(url(route), requests=5).versions == {"v1": 5}
        assert "shipyard-haproxy-" in (deep / "haproxy.cfg").read_text()
        with pytest.raises(AdapterError, match="refused 'set server be/zz weight 1'"):
            router.runtime(route).command("set server be/zz weight 1")
    finally:
        sock_dir = router.paths(route).admin.parent
        router.stop(route)
    assert not sock_dir.exists()


def test_observe_reports_weights_moved_by_hand(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    router.apply(route, RoutePlan(stable=v1, canary=v2, canary_weight=25))
    router.runtime(route).command("set server be/b1 weight 256")  # an operator, by hand
    assert router.observe(route).canary_weight == 50.0
    router.apply(route, RoutePlan(stable=v1, canary=v2, canary_weight=25))  # apply repairs it
    assert router.observe(route).canary_weight == 25.0


def per_bucket(buckets: dict[float, float]) -> list[int]:
    """Cumulative ``{le: n}`` back to the requests in each bucket, in LATENCY_BOUNDS order."""
    counts = [buckets[le] for le in LATENCY_BOUNDS]
    return [int(n - prev) for prev, n in zip([0.0, *counts], counts, strict=False)]


def get_all(target: str, delays_ms: list[int]) -> list[int]:
    """One request per delay, all at once (the backend answers each after its delay)."""
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(len(delays_ms)) as pool:
        answers = pool.map(lambda ms: client.get(target, params={"delay_ms": ms}), delays_ms)
        return [resp.status_code for resp in answers]


def test_latency_histogram_puts_each_request_in_its_bucket(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    router.apply(route, RoutePlan(stable=v1, canary=v2, canary_weight=0))
    assert COUNTERS.counters(route)["v1"].latency_buckets == dict.fromkeys(LATENCY_BOUNDS, 0.0)
    # each delay sits well inside one bucket: (0.1, 0.25], (0.25, 0.5], (0.5, 1], (1, 2.5]
    delays = [120, 300, 700, 1500] * 3
    assert get_all(url(route), delays) == [200] * 12
    v1_counts = COUNTERS.counters(route)["v1"]
    assert v1_counts.requests == 12
    assert list(v1_counts.latency_buckets) == list(LATENCY_BOUNDS)
    assert per_bucket(v1_counts.latency_buckets) == [0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0]
    assert v1_counts.latency_buckets[math.inf] == 12
    assert COUNTERS.counters(route)["v2"].latency_buckets[math.inf] == 0
    # the segment route (be_b) counts too, for the canary, and the mirror copies never do
    router.apply(
        route,
        RoutePlan(
            stable=v1,
            canary=v2,
            segment=SegmentMatch("path", value="/seg"),
            mirror_percent=100,
        ),
    )
    assert get_all(url(route) + "seg", [300, 300]) == [200, 200]
    assert get_all(url(route), [0] * 5) == [200] * 5
    wait_mirrored(v2, 5)
    counters = COUNTERS.counters(route)
    assert per_bucket(counters["v2"].latency_buckets)[6] == 2
    assert counters["v2"].latency_buckets[math.inf] == counters["v2"].requests == 2
    assert counters["v1"].latency_buckets[math.inf] == counters["v1"].requests == 17


def test_a_slow_and_a_failing_version_show_in_counters_and_load(
    router: HaproxyRouter, route: RouteRef, start_sample: StartBackend
) -> None:
    v1 = start_sample("v1")
    v2 = start_sample("v2", error_rate=0.3)
    v3 = start_sample("v3", latency_ms=200)
    for backend in (v1, v2, v3):  # all of them pass a deploy's health check
        assert httpx.get(f"http://{backend.addresses[0]}/healthz", timeout=5).status_code == 200
    router.apply(route, RoutePlan(stable=v1, canary=v2, canary_weight=50))
    result = loadgen.run(url(route), requests=400, concurrency=8)
    counters = COUNTERS.counters(route)
    assert result.proxy_failed == 0, result
    assert result.version_5xx["v1"] == 0 and counters["v1"].errors_5xx == 0
    assert result.version_5xx["v2"] == result.app_failed == counters["v2"].errors_5xx
    assert counters["v2"].requests == result.versions["v2"] + result.version_5xx["v2"]
    rate = counters["v2"].errors_5xx / counters["v2"].requests
    print(f"v2 5xx share {rate:.3f} over {counters['v2'].requests} requests")
    assert 0.15 < rate < 0.45
    router.apply(route, RoutePlan(stable=v1, canary=v3, canary_weight=50))  # v2's group
    result = loadgen.run(url(route), requests=200, concurrency=8)
    slow = COUNTERS.counters(route)["v3"]
    assert slow.requests == result.versions["v3"] == slow.latency_buckets[math.inf]
    assert slow.latency_buckets[0.1] == 0  # none faster than its 200 ms
    assert slow.latency_buckets[2.5] == slow.requests
    assert result.latency(0.5, "v3") >= 0.2 > result.latency(0.5, "v1")
    print(
        f"p50 v1 {result.latency(0.5, 'v1') * 1000:.1f} ms, v3 {result.latency(0.5, 'v3') * 1000:.1f} ms"
    )


def test_header_regex_segment_and_its_negation(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    segment = SegmentMatch("header", "X-Tier", regex="^(gold|plat)")
    plan = RoutePlan(stable=v1, canary=v2, segment=segment)
    router.apply(route, plan)
    assert router.observe(route) == plan

    def version(tier: str | None) -> str:
        headers = {"X-Other": "gold", **({"x-tier": tier} if tier is not None else {})}
        return httpx.get(url(route), headers=headers, timeout=5).headers["x-version"]

    cases: dict[str | None, str] = {"gold": "v2", "platinum": "v2", "gold 2": "v2"}
    cases |= {"silver": "v1", "xgold": "v1", "": "v1", None: "v1"}
    assert {tier: version(tier) for tier in cases} == cases
    # unanchored, with the characters the map format and the CLI would split on
    router.apply(
        route,
        RoutePlan(v1, v2, segment=SegmentMatch("header", "X-Tier", regex=r"a b#c;d\ e")),
    )
    assert (version("xa b#c;d ey"), version("a b")) == ("v2", "v1")
    negated = RoutePlan(v1, v2, segment=SegmentMatch("header", "X-Tier", regex="gold", negate=True))
    router.apply(route, negated)
    assert router.observe(route) == negated
    assert (version("gold"), version("old"), version(None)) == ("v1", "v2", "v2")
    # a regex HAProxy's PCRE2 refuses (Python's re takes it): refused before anything changed
    bad = SegmentMatch("header", "X-Tier", regex=r"\N{DIGIT ONE}")
    with pytest.raises(AdapterError, match="is invalid") as caught:
        router.apply(route, RoutePlan(v1, v2, canary_weight=50, segment=bad))
    assert "\n" not in str(caught.value)
    assert router.observe(route) == negated
    # a cold start comes back with the regex from the files
    router.stop(route)
    router.ensure(route)
    assert router.observe(route) == negated
    assert (version("gold"), version("old")) == ("v1", "v2")


def test_adopting_a_proxy_with_an_older_config_upgrades_it(
    router: HaproxyRouter, route: RouteRef, start_backend: StartBackend
) -> None:
    v1, v2 = start_backend("v1"), start_backend("v2")
    plan = RoutePlan(stable=v1, canary=v2, canary_weight=50)
    router.apply(route, plan)
    cfg = route.state_dir / "haproxy.cfg"  # what Shipyard before latency histograms wrote
    old = [line for line in cfg.read_text().splitlines() if "shipyard_" not in line]
    old = [line for line in old if "hval.map" not in line]
    old[0] = "# Generated by Shipyard (router kind haproxy); rewritten on every apply."
    cfg.write_text("\n".join(old) + "\n")
    router.reload(route)
    loadgen.run(url(route), requests=10)
    assert {c.latency_buckets == {} for c in COUNTERS.counters(route).values()} == {True}
    HaproxyRouter().ensure(route)  # a new Shipyard adopts it: rewrites the config, reloads
    assert "format 2" in cfg.read_text().splitlines()[0]
    assert router.observe(route) == plan
    loadgen.run(url(route), requests=10)
    counters = COUNTERS.counters(route)
    assert [counters[v].latency_buckets[math.inf] for v in ("v1", "v2")] == [5, 5]
