"""The HAProxy config renderer and layout are pure: a plan to text and back, no process."""

from __future__ import annotations

from pathlib import Path

from shipyard.adapters.routers.haproxy.layout import Layout, target_layout
from shipyard.adapters.routers.haproxy.paths import SOCKET_PATH_MAX, paths_for
from shipyard.adapters.routers.haproxy.render import (
    is_current,
    parse_files,
    render_config,
    render_files,
)
from shipyard.ports.routers import Backend, RoutePlan, SegmentMatch

V1 = Backend("1.0.0-rc.1", ("127.0.0.1:9001", "127.0.0.1:9002"))
V2 = Backend("1.0.0-rc.2", ("127.0.0.1:9003",))


def test_a_rendered_plan_reads_back_as_the_same_layout() -> None:
    paths = paths_for(Path("/srv/shipyard/environments/shop/production/router"))
    plan = RoutePlan(V1, V2, 25, SegmentMatch("header", "X-Beta", "1"), 5)
    layout = target_layout(Layout(), plan)
    cfg = render_config(paths, 8080, layout, slots=4)
    files = render_files(paths, layout)
    back = parse_files(files[paths.meta], cfg)
    assert back.candidates == {"a": V1.candidate, "b": V2.candidate}
    assert {n: s for n, s in back.slots.items() if s.enabled} == layout.slots  # others parked
    assert (back.weight, back.mirror, back.segment) == (25.0, 5.0, plan.segment)
    assert is_current(cfg, 8080) and not is_current(cfg, 8081)
    assert f"stats socket {paths.admin} " in cfg
    assert "X-Beta" not in cfg  # segments live in maps, changed without a reload
    assert files[paths.hdr].strip()


def test_a_candidate_keeps_its_group_when_promoted() -> None:
    live = target_layout(Layout(), RoutePlan(V1, V2, 50))
    promoted = target_layout(live, RoutePlan(V2))
    assert promoted.candidates == {"b": V2.candidate} and promoted.stable == "b"
    assert promoted.slots["b1"] == live.slots["b1"].__class__("127.0.0.1", 9003, 256, True)


def test_deep_state_dirs_get_sockets_haproxy_accepts(tmp_path: Path) -> None:
    for depth in (10, 40, 80, 200):
        paths = paths_for(tmp_path / ("x" * depth))
        assert len(str(paths.master)) <= SOCKET_PATH_MAX
        assert len(str(paths.admin)) <= SOCKET_PATH_MAX
