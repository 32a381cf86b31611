"""What HAProxy counted, per candidate: the metrics side of the HAProxy router.

Requests and 5xx come from ``show stat`` (servers of ``be``, ``be_a`` and ``be_b``), latencies from
the ``shipyard_latency`` table; both are cumulative in the worker, so each candidate's count is
taken from the baseline its group had when the candidate got it (kept in meta.map). Implements
``ports.metrics.RouterCounters``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from shipyard.adapters.routers.haproxy.layout import GROUPS, Totals, layout_from_meta
from shipyard.adapters.routers.haproxy.paths import paths_for
from shipyard.adapters.routers.haproxy.render import LATENCY_TABLE
from shipyard.adapters.routers.haproxy.runtime import RuntimeApi, as_int
from shipyard.adapters.routers.validate import LATENCY_BOUNDS, cumulative_buckets
from shipyard.ports.metrics import Counters
from shipyard.ports.routers import RouteRef

_BACKENDS = ("be", "be_a", "be_b")


def group_totals(api: RuntimeApi) -> dict[str, Totals]:
    """Per slot group: requests and 5xx, and the latency buckets.

    The table is read first: a request is in ``req_tot`` from when it is sent, and in a bucket
    only once it is answered, so no bucket is ever ahead of the requests.
    """
    table = api.latency_table(LATENCY_TABLE)
    return totals(api.stats(), table)


def totals(
    rows: Iterable[Mapping[str, str]], table: Mapping[str, tuple[int, ...]] | None
) -> dict[str, Totals]:
    sums: dict[str, list[int]] = {}
    for row in rows:
        name = row.get("svname", "")
        if row["pxname"] not in _BACKENDS or name[:1] not in GROUPS:
            continue
        acc = sums.setdefault(name[0], [0, 0])
        acc[0] += as_int(row.get("req_tot"))
        acc[1] += as_int(row.get("hrsp_5xx"))
    empty = (0,) * len(LATENCY_BOUNDS)
    return {
        group: Totals(req, err, () if table is None else table.get(group, empty))
        for group, (req, err) in sums.items()
    }


class HaproxyCounters:
    """Reads the counters of the HAProxy that ``HaproxyRouter`` runs for a route."""

    kind: ClassVar[str] = "haproxy"

    def counters(self, route: RouteRef) -> dict[str, Counters]:
        paths = paths_for(route.state_dir)
        api = RuntimeApi(paths.admin)
        live = layout_from_meta(api.show_map(paths.meta))
        table = api.latency_table(LATENCY_TABLE)  # first: see group_totals
        rows = api.stats()
        now = totals(rows, table)
        sums: dict[str, dict[str, float]] = {}
        for row in rows:
            name = row.get("svname", "")
            if row["pxname"] not in _BACKENDS or name[:1] not in live.candidates:
                continue
            acc = sums.setdefault(name[0], {})
            req = as_int(row.get("req_tot"))
            for key in ("req_tot", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "scur"):
                acc[key] = acc.get(key, 0.0) + as_int(row.get(key))
            acc["rtime_weighted"] = acc.get("rtime_weighted", 0.0) + req * as_int(row.get("rtime"))
        result: dict[str, Counters] = {}
        for group, candidate in live.candidates.items():
            acc = sums.get(group, {})
            total = now.get(group, Totals())
            base = live.base.get(group, Totals())
            if total.below(base):  # counters restarted with a new worker: no baseline left
                base = Totals()
            buckets: dict[float, float] = {}
            if total.buckets:
                zero = (0,) * len(total.buckets)
                start = base.buckets if len(base.buckets) == len(total.buckets) else zero
                buckets = cumulative_buckets(
                    [n - b for n, b in zip(total.buckets, start, strict=True)]
                )
            req_all = acc.get("req_tot", 0.0)
            rtime = acc.get("rtime_weighted", 0.0) / req_all if req_all else 0.0
            result[candidate] = Counters(
                requests=max(0, total.requests - base.requests),
                errors_5xx=max(0, total.errors_5xx - base.errors_5xx),
                response_time_ms_avg=rtime,
                extra={k: acc.get(k, 0.0) for k in ("hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "scur")},
                latency_buckets=buckets,
            )
        return result
