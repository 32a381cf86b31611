"""The HAProxy process supervisor and socket paths, against a real HAProxy 2.6."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.adapters.routers.haproxy.paths import SOCKET_PATH_MAX, paths_for
from shipyard.adapters.routers.haproxy.process import Supervisor
from shipyard.errors import AdapterError, MissingToolError
from shipyard.ports.routers import Backend, RoutePlan, RouteRef
from tests.integration.routers.conftest import free_port
from tests.support import loadgen


def padded_dir(base: Path, length: int, leaf: str = "master.sock") -> Path:
    """A directory under ``base`` whose ``leaf`` path is exactly ``length`` bytes long."""
    room = length - len(os.fsencode(base)) - len(f"//{leaf}")
    assert room > 0, "tmp_path is already too deep for this test"
    return base / ("d" * room)


def config_with_socket(where: Path, sock: Path) -> Path:
    cfg = where / "probe.cfg"
    cfg.write_text(
        "global\n"
        f"    stats socket {sock} mode 600 level admin\n"
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
        "    timeout server 1s\n"
        f"frontend fe\n    bind 127.0.0.1:{free_port()}\n    default_backend be\n"
        "backend be\n    server s 127.0.0.1:1\n"
    )
    return cfg


def test_haproxy_refuses_socket_paths_past_97_bytes_and_says_so(tmp_path: Path) -> None:
    """The limit paths.py works to is HAProxy's own, and ``haproxy -c`` shows HAProxy's reason."""
    for length, accepted in ((SOCKET_PATH_MAX, True), (SOCKET_PATH_MAX + 1, False)):
        d = padded_dir(tmp_path, length, "a.sock")
        d.mkdir(exist_ok=True)
        cfg = config_with_socket(d, d / "a.sock")
        assert len(os.fsencode(d / "a.sock")) == length
        if accepted:
            Supervisor().check_config(cfg)
        else:
            with pytest.raises(AdapterError, match=r"too long \(max 97\)") as err:
                Supervisor().check_config(cfg)
            assert err.value.message.startswith("haproxy -c rejected the config: config : parsing")


@pytest.mark.parametrize("length", [SOCKET_PATH_MAX, SOCKET_PATH_MAX + 1, 100, 108])
def test_first_deploy_with_a_long_data_dir_is_not_stuck_in_promoting(
    tmp_path: Path, length: int, start_backend: Callable[..., Backend]
) -> None:
    """A state dir whose sockets would be 97..108 bytes still starts HAProxy and routes."""
    state_dir = padded_dir(tmp_path, length)
    route = RouteRef("shop", "production", state_dir, free_port())
    paths = paths_for(state_dir)
    assert len(os.fsencode(paths.admin)) <= SOCKET_PATH_MAX
    assert len(os.fsencode(paths.master)) <= SOCKET_PATH_MAX
    assert paths.short_socket_dir == (length > SOCKET_PATH_MAX)
    router = HaproxyRouter()
    v1 = start_backend("v1")
    try:
        router.apply(route, RoutePlan(stable=v1))
        url = f"http://127.0.0.1:{route.listen_port}/"
        assert loadgen.run(url, requests=5).versions == {"v1": 5}
    finally:
        router.stop(route)


def test_a_missing_haproxy_binary_is_a_typed_error_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = RouteRef("shop", "production", tmp_path / "router", free_port())
    with pytest.raises(AdapterError, match=r"cannot run .*no-such-haproxy"):
        HaproxyRouter(haproxy=str(tmp_path / "no-such-haproxy")).ensure(route)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(MissingToolError, match="apt-get install haproxy") as err:
        HaproxyRouter().ensure(route)
    assert err.value.hint == "apt-get install haproxy"
    assert not (tmp_path / "router" / "haproxy.pid").exists()


def test_two_servers_restarting_a_dead_haproxy_start_one(
    tmp_path: Path, start_backend: Callable[..., Backend]
) -> None:
    """Two Shipyard servers on one database supervise the same environment: when its HAProxy
    died, both ensure it at once; one starts it, the other adopts it, and it serves."""
    route = RouteRef("shop", "production", tmp_path / "router", free_port())
    first, second = HaproxyRouter(), HaproxyRouter()
    v1 = start_backend("v1")
    try:
        first.apply(route, RoutePlan(stable=v1))
        pid = int((route.state_dir / "haproxy.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # our child: reap it
        with ThreadPoolExecutor(2) as pool:
            done = list(pool.map(lambda r: r.ensure(route), (first, second)))
        assert done == [None, None]
        assert first.observe(route) == second.observe(route) == RoutePlan(stable=v1)
        url = f"http://127.0.0.1:{route.listen_port}/"
        assert loadgen.run(url, requests=5).versions == {"v1": 5}
        masters = subprocess.run(
            ["pgrep", "-f", f"{route.state_dir.resolve()}/haproxy.cfg"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert len(masters) == 2  # one master and its worker
    finally:
        first.stop(route)
        second.stop(route)
