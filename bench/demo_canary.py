"""How often the `shipyard demo` canary analysis passes a healthy canary, and how fast it fails the bug.

The demo's analyses are seconds long, so its check (sequential judge, ``max_increase: 4``,
``alpha: 0.01``) and its load (~150 requests/s, 5% of them failing in every version) were chosen
together: a pass needs enough errors to rule harm out in one 10-second window. This replays
such windows through ``shipyard.analysis.checks.evaluate``, the very function the engine calls,
on cumulative router counters taken every 2 s, and prints the verdicts at the windows' end.

    .venv/bin/python bench/demo_canary.py [--runs 1500] [--seed 1] [--alpha 0.01]
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import replace

import numpy as np

from shipyard.analysis.checks import CheckSpec, Snapshot, evaluate
from shipyard.analysis.samples import Verdict
from shipyard.analysis.slices import ArmCounters

CHECK = CheckSpec("errors", "router", metric="error_ratio", max_increase=4.0, alpha=0.01)
RATE, BASE_ERRORS, BUG = 155.0, 0.05, 0.3  # requests/s; every version's error share; the bug's
INTERVAL, WINDOW = 2.0, 10.0


def window(
    check: CheckSpec, rng: np.random.Generator, weight: float, canary_errors: float
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
        n = int(rng.poisson(RATE * INTERVAL))
        c = int(rng.binomial(n, weight))
        nc, nb = nc + c, nb + n - c
        ec += int(rng.binomial(c, canary_errors))
        eb += int(rng.binomial(n - c, BASE_ERRORS))
        at += INTERVAL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--alpha", type=float, default=CHECK.alpha)
    args = parser.parse_args()
    check = replace(CHECK, alpha=args.alpha)
    rng = np.random.default_rng(args.seed)
    bug = BASE_ERRORS + (1 - BASE_ERRORS) * BUG
    for name, weight, errors, runs in (
        ("healthy at 20%", 0.2, BASE_ERRORS, args.runs),
        ("healthy at 50%", 0.5, BASE_ERRORS, args.runs),
        ("bug at 20%", 0.2, bug, max(1, args.runs // 10)),
    ):
        results = [window(check, rng, weight, errors) for _ in range(runs)]
        verdicts = Counter(v for v, _ in results)
        failed_at = sorted(t for v, t in results if v == "fail")
        median = f", median time to fail {failed_at[len(failed_at) // 2]:.0f}s" if failed_at else ""
        print(f"{name:15} {runs:5} windows: {dict(sorted(verdicts.items()))}{median}")


if __name__ == "__main__":
    main()
