"""How often the `shipyard demo` canary analysis passes a healthy canary, and how fast it fails the bug.

The demo's analyses are seconds long, so its check (sequential judge, ``negligible_increase:
0.025``) and its load (~150 requests/s; healthy versions never fail, the bug fails 30%) were
chosen together: a zero-error canary passes when the exact bound of its error ratio is below
2.5 points, which takes 182 canary requests at alpha 0.02, and a 10-second window at 20% gets
about 300. This replays such windows through ``shipyard.analysis.checks.evaluate``, the very
function the engine calls, on cumulative router counters taken every 2 s, and prints the
verdicts at the windows' end; ``--negligible 0`` shows the judge without the tolerance.

    .venv/bin/python bench/demo_canary.py [--runs 1500] [--seed 1] [--negligible 0.025]
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import replace

import numpy as np

from shipyard.analysis.checks import CheckSpec, Snapshot, evaluate
from shipyard.analysis.samples import Verdict
from shipyard.analysis.slices import ArmCounters

CHECK = CheckSpec("errors", "router", metric="error_ratio", negligible_increase=0.025)
RATE, BUG = 155.0, 0.3  # requests/s (the load generator's 150 plus health checks); the bug's
INTERVAL, WINDOW = 2.0, 10.0


def window(
    check: CheckSpec,
    rng: np.random.Generator,
    weight: float,
    canary_errors: float,
    rate: float = RATE,
    stable_errors: float = 0.0,
) -> tuple[str, float]:
    """One analysis window: (verdict, seconds) at the first FAIL or when the window closes."""
    snaps: list[Snapshot] = []
    nc = ec = nb = eb = 0
    at = 0.0
    while True:
        snaps.append(Snapshot(at, ArmCounters(nc, ec), ArmCounters(nb, eb)))
        final = at >= WINDOW - 1e-9
        if len(snaps) > 1:
            verdict = evaluate(check, snaps, final=final).verdict
            if verdict is Verdict.FAIL or final:
                return verdict.value, at
        n = int(rng.poisson(rate * INTERVAL))
        c = int(rng.binomial(n, weight))
        nc, nb = nc + c, nb + n - c
        ec += int(rng.binomial(c, canary_errors))
        eb += int(rng.binomial(n - c, stable_errors))
        at += INTERVAL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--negligible", type=float, default=CHECK.negligible_increase)
    args = parser.parse_args()
    check = replace(CHECK, negligible_increase=args.negligible)
    rng = np.random.default_rng(args.seed)
    few = max(1, args.runs // 10)
    scenarios: tuple[tuple[str, float, float, float, float, int], ...] = (
        # name, canary weight, canary error share, stable error share, requests/s, windows
        ("healthy at 20%", 0.2, 0.0, 0.0, RATE, args.runs),
        ("healthy at 50%", 0.5, 0.0, 0.0, RATE, args.runs),
        ("healthy 20%, 60% load", 0.2, 0.0, 0.0, RATE * 0.6, few),
        ("healthy 20%, both 0.3%", 0.2, 0.003, 0.003, RATE, few),
        ("bug at 20%", 0.2, BUG, 0.0, RATE, few),
    )
    for name, weight, canary, stable, rate, runs in scenarios:
        results = [window(check, rng, weight, canary, rate, stable) for _ in range(runs)]
        verdicts = Counter(v for v, _ in results)
        failed_at = sorted(t for v, t in results if v == "fail")
        median = f", median time to fail {failed_at[len(failed_at) // 2]:.0f}s" if failed_at else ""
        print(f"{name:23} {runs:5} windows: {dict(sorted(verdicts.items()))}{median}")


if __name__ == "__main__":
    main()
