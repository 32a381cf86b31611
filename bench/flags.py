"""Flag evaluations per second on the Unleash client-spec cases, three engines in one run.

    .venv/bin/python bench/flags.py [--seconds 2] [--repeat 3]

Engines: Shipyard's compiled evaluator (shipyard.domain.flags), the same behind the SDK's
FlagClient (context merge + exposure counting), Unleash's Rust engine through
its Python binding (yggdrasil-engine, ``check_enabled``/``check_variant``: no metrics recorded)
and the official Python SDK (UnleashClient, which delegates to yggdrasil and counts metrics).
Each round runs every isEnabled and getVariant case of every spec file once; the best round
rate of ``--repeat`` rounds of ``--seconds`` each is reported. Optional engines that are not
installed are skipped. ``pip install -e .[bench]`` brings yggdrasil-engine; UnleashClient 6.9.1
cannot be an extra (its fcache pins platformdirs~=3, Shipyard needs >=4), so install it by hand:
``pip install UnleashClient==6.9.1 'platformdirs>=4'`` (fcache works with platformdirs 4).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.spec.client_spec import SPEC_VERSION, SpecCase, load_cases

from shipyard.domain.flags import apply_events, compile_state

Call = tuple[Callable[[str, dict[str, Any]], Any], str, dict[str, Any]]
Check = Callable[[SpecCase, Any], bool]


def full_state(state: dict[str, Any]) -> dict[str, Any]:
    """Delta-event fixtures become plain states so every engine loads the same document."""
    return apply_events(None, state["events"]) if "events" in state else state


def by_file(cases: list[SpecCase]) -> dict[str, list[SpecCase]]:
    out: dict[str, list[SpecCase]] = {}
    for case in cases:
        out.setdefault(case.file, []).append(case)
    return out


def shipyard_calls(files: dict[str, list[SpecCase]]) -> tuple[list[Call], Check]:
    calls: list[Call] = []
    for cases in files.values():
        state = compile_state(full_state(cases[0].state))
        for c in cases:
            calls.append(
                (state.get_variant if c.is_variant else state.is_enabled, c.toggle, c.context)
            )

    def ok(case: SpecCase, got: Any) -> bool:
        return (got.to_dict() if case.is_variant else got) == case.expected

    return calls, ok


def sdk_calls(files: dict[str, list[SpecCase]]) -> tuple[list[Call], Check]:
    """The same evaluator behind ``FlagClient``: adds context merging and exposure counting."""
    from shipyard.sdk import FlagClient

    calls: list[Call] = []
    for cases in files.values():
        client = FlagClient(None, bootstrap=full_state(cases[0].state))
        for c in cases:
            calls.append(
                (client.get_variant if c.is_variant else client.is_enabled, c.toggle, c.context)
            )

    def ok(case: SpecCase, got: Any) -> bool:
        return (got.to_dict() if case.is_variant else got) == case.expected

    return calls, ok


def yggdrasil_calls(files: dict[str, list[SpecCase]]) -> tuple[list[Call], Check]:
    from yggdrasil_engine.engine import UnleashEngine

    calls: list[Call] = []
    for cases in files.values():
        engine = UnleashEngine()
        engine.take_state(json.dumps(full_state(cases[0].state)))
        for c in cases:
            calls.append(
                (
                    engine.check_variant if c.is_variant else engine.check_enabled,
                    c.toggle,
                    c.context,
                )
            )

    def ok(case: SpecCase, got: Any) -> bool:
        if not case.is_variant:
            return bool(got.is_enabled) == case.expected
        v = got.variant
        d = {"name": v.name, "enabled": v.enabled, "feature_enabled": v.feature_enabled}
        if v.payload:
            d["payload"] = v.payload
        return d == case.expected

    return calls, ok


def unleash_client_calls(files: dict[str, list[SpecCase]]) -> tuple[list[Call], Check, list[Any]]:
    from UnleashClient import UnleashClient
    from UnleashClient.cache import BaseCache
    from UnleashClient.constants import FEATURES_URL

    class MemoryCache(BaseCache):
        def __init__(self, state: dict[str, Any]) -> None:
            self.data: dict[str, Any] = {FEATURES_URL: json.dumps(state)}
            self.bootstrapped = True

        def set(self, key: str, value: Any) -> None:
            self.data[key] = value

        def mset(self, data: dict[str, Any]) -> None:
            self.data.update(data)

        def get(self, key: str, default: Any = None) -> Any:
            return self.data.get(key, default)

        def exists(self, key: str) -> bool:
            return key in self.data

        def destroy(self) -> None:
            self.data.clear()

    calls: list[Call] = []
    clients = []
    for name, cases in files.items():
        client = UnleashClient(
            url="http://127.0.0.1:9",
            app_name=f"bench-{name}",
            disable_metrics=True,
            disable_registration=True,
            cache=MemoryCache(full_state(cases[0].state)),
        )
        client.initialize_client(fetch_toggles=False)
        clients.append(client)
        for c in cases:
            calls.append(
                (client.get_variant if c.is_variant else client.is_enabled, c.toggle, c.context)
            )

    def ok(case: SpecCase, got: Any) -> bool:
        return bool(got == case.expected)

    return calls, ok, clients


def agreement(calls: list[Call], cases: list[SpecCase], ok: Check) -> int:
    return sum(
        ok(case, fn(toggle, ctx)) for (fn, toggle, ctx), case in zip(calls, cases, strict=True)
    )


def rate(calls: list[Call], seconds: float, repeat: int) -> float:
    """Best evaluations per second over ``repeat`` rounds of about ``seconds`` each."""
    best = 0.0
    for _ in range(repeat):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for fn, toggle, ctx in calls:
                fn(toggle, ctx)
            n += len(calls)
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one timed round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per engine; best is kept")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # UnleashClient logs every unknown-toggle lookup

    cases = list(load_cases())
    files = by_file(cases)
    ordered = [c for group in files.values() for c in group]
    print(f"Unleash client-specification {SPEC_VERSION}: {len(files)} files, {len(ordered)} cases")
    print(
        f"python {sys.version.split()[0]}, {args.repeat} rounds x {args.seconds:.1f} s per engine\n"
    )

    engines: list[tuple[str, list[Call], Check]] = []
    calls, ok = shipyard_calls(files)
    engines.append(("shipyard (compiled, pure Python)", calls, ok))
    calls, ok = sdk_calls(files)
    engines.append(("shipyard FlagClient (+exposures)", calls, ok))
    cleanup: list[Any] = []
    try:
        calls, ok = yggdrasil_calls(files)
        engines.append(("yggdrasil-engine (Rust via ctypes)", calls, ok))
    except ImportError:
        print("yggdrasil-engine not installed: skipped")
    try:
        calls, ok, cleanup = unleash_client_calls(files)
        engines.append(("UnleashClient (Python SDK)", calls, ok))
    except ImportError:
        print("UnleashClient not installed: skipped")

    results = []
    for name, calls, ok in engines:
        agreed = agreement(calls, ordered, ok)
        results.append((name, rate(calls, args.seconds, args.repeat), agreed))
    for client in cleanup:
        client.destroy()

    ygg = next((r for n, r, _ in results if n.startswith("yggdrasil")), None)
    print(f"{'engine':<36} {'evals/s':>12} {'us/eval':>9} {'spec ok':>9} {'vs yggdrasil':>13}")
    for name, r, agreed in results:
        ratio = f"{r / ygg:.2f}x" if ygg else "n/a"
        print(f"{name:<36} {r:>12,.0f} {1e6 / r:>9.2f} {agreed:>5}/{len(ordered):<3} {ratio:>13}")


if __name__ == "__main__":
    main()
