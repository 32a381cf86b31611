"""Canary judges side by side on the same simulated request streams.

    .venv/bin/python bench/canary.py [--seed 1] [--nulls 1000] [--reps 300] [--workers 2]

Setup (issue 5): 200 requests/s, canary share 5% -> 25% -> 50% over 15 minutes (5 min each),
observed in 10 s slices; baseline error rate 1% (and 0.5%), lognormal latency (sigma 0.5).
Scenarios: A/A nulls, errors x1.5/x2/x5, latency +10%/+50%. Two worlds: ``stationary`` and
``drift``, where load follows a slow wave plus a random walk and the error rate rises with load
and with time, identically for both arms (latency rises with load too).

Every judge sees the same streams. Per-slice summaries are drawn from their exact laws instead of
simulating every request: errors are binomial; the sequential latency test only needs the count
of "canary slower" among the order-of-arrival pairs, which is binomial with
P = Phi(log(factor) / (sigma*sqrt 2)); slice means of latency and log-latency are drawn from
their (normal) sampling laws. The sequential judge runs through the library's own kernels
(``mixture_log_evalue``, ``error_trials``), the Kayenta-style judge through ``rank_sum_interval``'s
normal-approximation rule, vectorised.

Judges: sequential (``SequentialConfig()`` defaults); oracle SPRT that knows the true error
ratio (alpha 0.05, the floor); threshold Argo-default (error rate > 2x nominal base, 60 s
interval, failureLimit 1, plus mean latency > 1.5x nominal) and the best threshold configuration
found by grid search that holds <= 5% false rollback on every null in both worlds (tuned on these
very runs, which flatters it); Kayenta-style Mann-Whitney (95% interval on per-slice series,
critical metrics) judged every minute (stage ends fall on minutes); naive z-test on cumulative
counts and log-latency re-checked every 10 s (one-sided 5%).

Exposure is the number of canary requests served up to and including the slice of the verdict;
medians and p90s are over *all* runs of a scenario, a run never rolled back counting as infinite
(shown as "-"), so a judge cannot look fast by catching only the easy runs.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from shipyard.analysis.samples import Metric
from shipyard.analysis.sequential import (
    SequentialConfig,
    error_trials,
    harm_grid,
    mixture_log_evalue,
)
from shipyard.analysis.threshold import first_failure

SLICE_S = 10
SLICES = 90
RPS = 200
SIGMA = 0.5
MEDIAN_LATENCY = 0.1
SHARE = np.repeat([0.05, 0.25, 0.5], SLICES // 3)
LAT_MEAN = MEDIAN_LATENCY * math.exp(SIGMA**2 / 2)
WORLDS = ("stationary", "drift")

Arr = NDArray[np.float64]


@dataclass(frozen=True)
class Scenario:
    name: str
    base: float
    error_ratio: float = 1.0
    latency_factor: float = 1.0

    @property
    def null(self) -> bool:
        return self.error_ratio == 1.0 and self.latency_factor == 1.0


def scenarios() -> list[Scenario]:
    out = [Scenario("A/A 1%", 0.01), Scenario("A/A 0.5%", 0.005)]
    for base in (0.01, 0.005):
        for r in (1.5, 2.0, 5.0):
            out.append(Scenario(f"err x{r:g} @{base:.1%}", base, error_ratio=r))
    out += [
        Scenario("lat +10%", 0.01, latency_factor=1.1),
        Scenario("lat +50%", 0.01, latency_factor=1.5),
    ]
    return out


@dataclass
class Streams:
    nc: Arr
    nb: Arr
    ec: Arr
    eb: Arr
    wins: Arr
    pairs: Arr
    mean_c: Arr
    mean_b: Arr
    log_c: Arr
    log_b: Arr
    var_c: Arr
    var_b: Arr


def simulate(world: str, sc: Scenario, reps: int, rng: np.random.Generator) -> Streams:
    t = np.arange(SLICES)
    if world == "stationary":
        load = np.ones((reps, SLICES))
        err_mult = np.ones((reps, SLICES))
    else:
        phase = rng.uniform(0, 2 * np.pi, (reps, 1))
        walk = np.cumsum(rng.normal(0, 0.01, (reps, SLICES)), axis=1)
        load = np.exp(0.25 * np.sin(2 * np.pi * t / 45 + phase) + walk)
        err_mult = load**1.5 * (1 + 0.5 * t / SLICES)
    lat_mult = np.sqrt(load)
    total = rng.poisson(RPS * SLICE_S * load)
    nc = rng.binomial(total, SHARE)
    nb = total - nc
    p_b = np.clip(sc.base * err_mult, 0, 1)
    p_c = np.clip(p_b * sc.error_ratio, 0, 1)
    ec = rng.binomial(nc, p_c)
    eb = rng.binomial(nb, p_b)
    pairs = np.minimum(nc, nb)
    theta = stats.norm.cdf(math.log(sc.latency_factor) / (SIGMA * math.sqrt(2)))
    wins = rng.binomial(pairs, theta)
    mu_b = math.log(MEDIAN_LATENCY) + np.log(lat_mult)
    mu_c = mu_b + math.log(sc.latency_factor)
    sd_factor = math.sqrt(math.exp(SIGMA**2) - 1)

    def mean_latency(mu: Arr, n: Arr) -> Arr:
        m = np.exp(mu + SIGMA**2 / 2)
        return m * (1 + sd_factor * rng.standard_normal(mu.shape) / np.sqrt(np.maximum(n, 1)))

    def log_var(n: Arr) -> Arr:
        dof = np.maximum(n - 1, 1)
        return SIGMA**2 * rng.chisquare(dof) / dof

    return Streams(
        nc=nc.astype(float),
        nb=nb.astype(float),
        ec=ec.astype(float),
        eb=eb.astype(float),
        wins=wins.astype(float),
        pairs=pairs.astype(float),
        mean_c=mean_latency(mu_c, nc),
        mean_b=mean_latency(mu_b, nb),
        log_c=mu_c + SIGMA * rng.standard_normal(nc.shape) / np.sqrt(np.maximum(nc, 1)),
        log_b=mu_b + SIGMA * rng.standard_normal(nb.shape) / np.sqrt(np.maximum(nb, 1)),
        var_c=log_var(nc),
        var_b=log_var(nb),
    )


def first_true(hit: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Slice index of the first True along the last axis, -1 if none."""
    return np.where(hit.any(axis=-1), np.argmax(hit, axis=-1), -1).astype(np.int64)


def earliest(*indices: NDArray[np.int64]) -> NDArray[np.int64]:
    stacked = np.stack([np.where(i < 0, SLICES, i) for i in indices])
    best = stacked.min(axis=0)
    return np.where(best >= SLICES, -1, best).astype(np.int64)


def judge_sequential(
    s: Streams, _: Scenario, cfg: SequentialConfig | None = None
) -> NDArray[np.int64]:
    cfg = cfg or SequentialConfig()
    found = []
    if Metric.ERROR_RATE in cfg.metrics:
        succ, trials, off = error_trials(s.ec, s.nc, s.eb, s.nb)
        low, high = cfg.effect_range(Metric.ERROR_RATE)
        log_e = mixture_log_evalue(succ, trials, off, harm_grid(low, high, cfg.grid_size))
        found.append(first_true(log_e >= math.log(1 / cfg.alpha_per_test(Metric.ERROR_RATE))))
    if Metric.LATENCY in cfg.metrics:
        low, high = cfg.effect_range(Metric.LATENCY)
        log_e = mixture_log_evalue(
            s.wins, s.pairs, np.zeros_like(s.wins), harm_grid(low, high, cfg.grid_size)
        )
        found.append(first_true(log_e >= math.log(1 / cfg.alpha_per_test(Metric.LATENCY))))
    return earliest(*found)


def judge_oracle(s: Streams, sc: Scenario) -> NDArray[np.int64]:
    """SPRT told the true error ratio: what knowing the effect in advance would buy."""
    if sc.error_ratio == 1.0:
        return np.full(s.nc.shape[0], -1, dtype=np.int64)
    succ, trials, off = error_trials(s.ec, s.nc, s.eb, s.nb)
    log_e = mixture_log_evalue(succ, trials, off, np.array([math.log(sc.error_ratio)]))
    return first_true(log_e >= math.log(20))


def judge_threshold(
    s: Streams,
    sc: Scenario,
    k: float = 2.0,
    failure_limit: int = 1,
    interval: int = 6,
    lat_k: float = 1.5,
) -> NDArray[np.int64]:
    """Argo/Flagger: per-interval canary-only checks against limits set from the nominal base."""
    reps = s.nc.shape[0]
    n_int = SLICES // interval
    shape = (reps, n_int, interval)
    req = s.nc.reshape(shape).sum(-1)
    rate = s.ec.reshape(shape).sum(-1) / np.maximum(req, 1)
    lat = (s.mean_c * s.nc).reshape(shape).sum(-1) / np.maximum(req, 1)
    err_idx = first_failure(rate > k * sc.base, failure_limit)
    lat_idx = first_failure(lat > lat_k * LAT_MEAN, failure_limit)
    to_slice = [np.where(i < 0, -1, (i + 1) * interval - 1) for i in (err_idx, lat_idx)]
    return earliest(*to_slice)


def _hl_lower_bound(x: Arr, y: Arr, confidence: float) -> Arr:
    """Lower end of the rank-sum interval for each row (normal approximation: ties are common)."""
    m, n = x.shape[-1], y.shape[-1]
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    k = max(math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12)), 1)
    diffs = (x[:, :, None] - y[:, None, :]).reshape(x.shape[0], m * n)
    return np.partition(diffs, k - 1, axis=-1)[:, k - 1]


def judge_kayenta(
    s: Streams, _: Scenario, every: int = 6, confidence: float = 0.95
) -> NDArray[np.int64]:
    """Kayenta-style fixed-window judgement of the window so far, repeated every ``every`` slices."""
    reps = s.nc.shape[0]
    verdict = np.full(reps, -1, dtype=np.int64)
    rate_c, rate_b = s.ec / np.maximum(s.nc, 1), s.eb / np.maximum(s.nb, 1)
    for end in range(every, SLICES + 1, every):
        open_ = np.flatnonzero(verdict < 0)
        for start in range(0, open_.size, 400):
            rows = open_[start : start + 400]
            worse = np.zeros(rows.size, dtype=bool)
            for xc, xb in ((rate_c, rate_b), (s.mean_c, s.mean_b)):
                x, y = xc[rows, :end], xb[rows, :end]
                low = _hl_lower_bound(x, y, confidence)
                worse |= (low > 0) & (x.mean(-1) >= y.mean(-1))
            verdict[rows[worse]] = end - 1
    return verdict


def judge_naive_z(s: Streams, _: Scenario, z_crit: float = 1.6449) -> NDArray[np.int64]:
    """Fixed-sample z-tests on cumulative data, re-checked after every slice (peeking)."""
    nc, nb = np.cumsum(s.nc, 1), np.cumsum(s.nb, 1)
    ec, eb = np.cumsum(s.ec, 1), np.cumsum(s.eb, 1)
    pooled = (ec + eb) / (nc + nb)
    se = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * (1 / nc + 1 / nb))
    z_err = (ec / nc - eb / nb) / se
    lc, lb = np.cumsum(s.log_c * s.nc, 1) / nc, np.cumsum(s.log_b * s.nb, 1) / nb
    var = (np.cumsum(s.var_c * s.nc, 1) + np.cumsum(s.var_b * s.nb, 1)) / (nc + nb)
    z_lat = (lc - lb) / np.sqrt(var * (1 / nc + 1 / nb))
    return earliest(first_true(z_err > z_crit), first_true(z_lat > z_crit))


THRESHOLD_GRID = [
    {"k": k, "failure_limit": f, "interval": i}
    for k, f, i in itertools.product(
        (1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0), (0, 1, 2, 3, 5), (1, 3, 6)
    )
]

KAYENTA_GRID = (0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)

JUDGES: dict[str, Callable[[Streams, Scenario], NDArray[np.int64]]] = {
    "sequential (Shipyard default)": judge_sequential,
    "oracle SPRT (knows ratio)": judge_oracle,
    "threshold Argo k=2 F=1 60s": judge_threshold,
    "Kayenta MW every 1 min": judge_kayenta,
    "Kayenta MW at stage ends": lambda s, sc: judge_kayenta(s, sc, every=SLICES // 3),
    "naive z every 10 s": judge_naive_z,
}


def run_world(args: tuple[str, int, int, int]) -> dict[str, dict[str, NDArray[np.int64] | Arr]]:
    world, seed, nulls, reps = args
    out: dict[str, dict[str, NDArray[np.int64] | Arr]] = {}
    for idx, sc in enumerate(scenarios()):
        rng = np.random.default_rng([seed, WORLDS.index(world), idx])
        n = nulls if sc.name == "A/A 1%" else nulls // 2 if sc.null else reps
        s = simulate(world, sc, n, rng)
        res: dict[str, NDArray[np.int64] | Arr] = {"cum_nc": np.cumsum(s.nc, 1)}
        for name, judge in JUDGES.items():
            res[name] = judge(s, sc)
        for j, params in enumerate(THRESHOLD_GRID):
            res[f"grid{j}"] = judge_threshold(s, sc, **params)  # type: ignore[arg-type]
        for j, conf in enumerate(KAYENTA_GRID):
            res[f"kgrid{j}"] = judge_kayenta(s, sc, confidence=conf)
        out[sc.name] = res
    return out


def summarize(idx: NDArray[np.int64], cum_nc: Arr) -> tuple[float, float, float, float]:
    """Rollback rate, median and p90 exposure, median seconds to verdict (inf = never)."""
    hit = idx >= 0
    rows = np.arange(idx.size)
    exposure = np.where(hit, cum_nc[rows, np.maximum(idx, 0)], np.inf)
    seconds = np.where(hit, (idx + 1) * SLICE_S, np.inf)
    return (
        float(hit.mean()),
        float(np.quantile(exposure, 0.5, method="inverted_cdf")),
        float(np.quantile(exposure, 0.9, method="inverted_cdf")),
        float(np.quantile(seconds, 0.5, method="inverted_cdf")),
    )


def pick(
    results: dict[str, dict[str, dict[str, NDArray[np.int64] | Arr]]],
    prefix: str,
    size: int,
    max_false: float,
) -> int | None:
    """Lowest worst-world median exposure on x2 @1% among configs within ``max_false`` on every null."""
    best, best_exposure = None, math.inf
    for j in range(size):
        ok = all(
            summarize(results[w][sc.name][f"{prefix}{j}"], results[w][sc.name]["cum_nc"])[0]
            <= max_false  # type: ignore[arg-type]
            for w in WORLDS
            for sc in scenarios()
            if sc.null
        )
        if not ok:
            continue
        exposure = max(
            summarize(
                results[w]["err x2 @1.0%"][f"{prefix}{j}"], results[w]["err x2 @1.0%"]["cum_nc"]
            )[1]  # type: ignore[arg-type]
            for w in WORLDS
        )
        if exposure < best_exposure:
            best, best_exposure = j, exposure
    return best


def goal_lines(
    results: dict[str, dict[str, dict[str, NDArray[np.int64] | Arr]]], names: list[str]
) -> list[str]:
    """The issue's goals, checked for the sequential default in both worlds."""
    seq = names[0]

    def stat(w: str, sc: str, name: str = seq) -> tuple[float, float, float, float]:
        return summarize(results[w][sc][name], results[w][sc]["cum_nc"])  # type: ignore[arg-type]

    lines = []
    for w in WORLDS:
        nulls = [results[w][sc.name][seq] for sc in scenarios() if sc.null]
        pooled = float(np.mean(np.concatenate(nulls) >= 0))
        worst = max(float(np.mean(n >= 0)) for n in nulls)
        _, med2, p90_2, _ = stat(w, "err x2 @1.0%")
        med5 = stat(w, "err x5 @1.0%")[1]
        caught15 = min(stat(w, n)[0] for n in ("err x1.5 @1.0%", "err x1.5 @0.5%"))
        thr = [n for n in names if n.startswith("threshold best")]
        thr_med = stat(w, "err x2 @1.0%", thr[0])[1] if thr else math.inf
        checks = [
            (
                f"false rollback on all {sum(n.size for n in nulls)} nulls {pooled:.2%} <= 1%",
                pooled <= 0.01,
            ),
            (f"false rollback on the worst null set {worst:.2%} <= 1%", worst <= 0.01),
            (f"x2 @1% median {med2:,.0f} <= 1,500", med2 <= 1500),
            (f"x2 @1% p90 {p90_2:,.0f} <= 3,500", p90_2 <= 3500),
            (f"x5 @1% median {med5:,.0f} <= 300", med5 <= 300),
            (f"x1.5 caught {caught15:.1%} >= 95%", caught15 >= 0.95),
            (f"best safe threshold median {fmt(thr_med)} > {med2:,.0f}", thr_med > med2),
        ]
        for name in names:
            if name.startswith("Kayenta"):
                ratio = stat(w, "err x2 @1.0%", name)[1] / med2
                checks.append((f"{name} / sequential = {ratio:.2f}x >= 4x", ratio >= 4))
        for text, ok in checks:
            lines.append(f"{w:<10} goal {'MET ' if ok else 'MISS'} {text}")
    return lines


def fmt(v: float, pct: bool = False) -> str:
    if math.isinf(v):
        return "-"
    return f"{v:.1%}" if pct else f"{v:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--nulls", type=int, default=2000, help="A/A runs at 1%% base per world (half at 0.5%%)"
    )
    parser.add_argument(
        "--reps", type=int, default=500, help="runs per regression scenario per world"
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    jobs = [(w, args.seed, args.nulls, args.reps) for w in WORLDS]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = dict(zip(WORLDS, pool.map(run_world, jobs), strict=True))
    best = pick(results, "grid", len(THRESHOLD_GRID), 0.05)
    k_best = pick(results, "kgrid", len(KAYENTA_GRID), 0.01)
    names = list(JUDGES)
    if k_best is not None:
        label = f"Kayenta 1 min conf={KAYENTA_GRID[k_best]:g}"
        for w in WORLDS:
            for sc in scenarios():
                results[w][sc.name][label] = results[w][sc.name][f"kgrid{k_best}"]
        names.insert(5, label)
    if best is not None:
        p = THRESHOLD_GRID[best]
        label = f"threshold best k={p['k']:g} F={p['failure_limit']} {p['interval'] * SLICE_S}s"
        for w in WORLDS:
            for sc in scenarios():
                results[w][sc.name][label] = results[w][sc.name][f"grid{best}"]
        names.insert(3, label)
    cfg = SequentialConfig()
    print(
        f"canary bench: seed {args.seed}, {SLICES} slices of {SLICE_S}s, {RPS} req/s, ladder 5/25/50%, "
        f"sequential alpha={cfg.alpha} min_error_ratio={cfg.min_error_ratio} "
        f"min_slower_probability={cfg.min_slower_probability}"
    )
    header = (
        f"{'world':<10} {'scenario':<15} {'judge':<31} {'runs':>5} {'rollback':>8} "
        f"{'med exp':>8} {'p90 exp':>8} {'med TTD s':>9}"
    )
    for w in WORLDS:
        print()
        print(header)
        for sc in scenarios():
            for name in names:
                if name.startswith("oracle") and sc.error_ratio == 1.0:
                    continue
                idx = results[w][sc.name][name]
                rate, med, p90, ttd = summarize(idx, results[w][sc.name]["cum_nc"])  # type: ignore[arg-type]
                print(
                    f"{w:<10} {sc.name:<15} {name:<31} {idx.size:>5} {fmt(rate, True):>8} "
                    f"{fmt(med):>8} {fmt(p90):>8} {fmt(ttd):>9}"
                )
    print()
    seq = names[0]
    for w in WORLDS:
        base = results[w]["err x2 @1.0%"]
        s_med = summarize(base[seq], base["cum_nc"])[1]  # type: ignore[arg-type]
        for other in names[1:]:
            o_med = summarize(base[other], base["cum_nc"])[1]  # type: ignore[arg-type]
            ratio = "-" if math.isinf(o_med) else f"{o_med / s_med:.2f}x"
            print(f"{w:<10} err x2 @1%: median exposure {other} / sequential = {ratio}")
    print()
    for line in goal_lines(results, names):
        print(line)
    print(
        "\nthreshold best: lowest x2 exposure with <= 5% false rollback on every null, "
        f"{len(THRESHOLD_GRID)} configurations; Kayenta conf: lowest with <= 1%, {len(KAYENTA_GRID)} levels"
    )
    print(f"elapsed {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
