"""Dashboard benchmark (a command, not a test): each query a page runs, and each page's render time.

    python benchmarks/dashboard.py [--runs 200] [--requests 10000000] [--warehouse URL] [--repeat 5] [--tiny]

Fills a warehouse (a new embedded one under --work unless --warehouse names one that already holds the
synthetic runs) with --requests requests over --runs runs, written by ClickHouse itself (INSERT ...
SELECT FROM numbers()), then prints from ONE run:
- every warehouse read a page makes, its median time over --repeat calls, its ratio to the 200 ms
  target and to a reference measured alongside (the bare count of one run's requests, the cheapest
  read of the requests table);
- every page rendered by Streamlit's AppTest against that warehouse, with its read caches empty (what a
  user sees first, or after anything was written) and warm (the next load), against the 1 s target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_tiny, ratio, tiny_sizes  # noqa: E402

QUERY_TARGET_MS = 200.0
PAGE_TARGET_MS = 1000.0


def timed(call: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of `repeat` calls after one warm-up."""
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def page_reads(wh: Any, run_id: str) -> dict[str, list[tuple[str, Callable[[], Any]]]]:
    """The Warehouse reads each page makes (dashboard/data.py), by page."""
    from dashboard.charts import bucket_seconds
    from warehouse.analysis import slo
    from warehouse.analysis.baseline import optional_baseline
    from warehouse.analysis.compare import compare
    from warehouse.analysis.trends import trends
    from warehouse.read.sqlgate import DEFAULT_ROW_LIMIT
    from warehouse.report.reports import build_report
    from warehouse.store import RunFilter

    bucket = bucket_seconds(wh.totals(run_id).span_s)
    example = ("SELECT journey, step, count() AS requests, countIf(ok = 0) AS errors, "
               "quantileExact(0.95)(duration_ms) AS p95_ms FROM requests WHERE run_id = "
               "(SELECT run_id FROM runs FINAL ORDER BY started_at DESC LIMIT 1) GROUP BY journey, step")
    every = [("data_version", wh.data_version)]
    detail = [
        ("resolve (prefix)", lambda: wh.resolve(run_id[:10])),
        ("run", lambda: wh.run(run_id)),
        ("totals", lambda: wh.totals(run_id)),
        ("step_stats", lambda: wh.step_stats(run_id)),
        ("slo_verdicts", lambda: slo.stored(wh.backend, run_id)),
        ("errors", lambda: wh.errors(run_id)),
        (f"latency_over_time ({bucket} s)", lambda: wh.latency_over_time(run_id, bucket)),
        (f"infra_over_time ({bucket} s)", lambda: wh.infra_over_time(run_id, bucket)),
        ("whole run detail (one session)", lambda: build_report(wh, run_id)),
    ]
    run = wh.run(run_id)
    other = wh.run_list(RunFilter(fingerprint=run.fingerprint), 2)[-1].run_id  # an earlier run of it
    group = run.group_id
    comparing = [
        ("run_choices", lambda: wh.run_choices(500)),
        ("run_groups", wh.run_groups),
        ("baseline (pinned, else auto)", lambda: optional_baseline(wh, run_id)),
        ("compare A B", lambda: compare(wh, other, run_id)),
        ("latency_distribution (A, B)", lambda: wh.latency_distribution([other, run_id])),
        ("latency_distribution (one step)", lambda: wh.latency_distribution([other, run_id], "checkout", "pay")),
        ("compare --group", lambda: compare(wh, group=group)),
    ]
    trending = [
        ("fingerprints", wh.fingerprints),
        *((f"trends ({metric})", lambda metric=metric: trends(wh.backend, metric, fingerprint=run.fingerprint))
          for metric in ("p95", "error_rate")),
    ]
    return {
        "runs": [*every, ("run_facets", wh.run_facets), ("run_list", lambda: wh.run_list(RunFilter(), 500)),
                 ("run_list (filtered)", lambda: wh.run_list(RunFilter(tool="k6", branch="main"), 500)),
                 ("run_list (group)", lambda: wh.run_list(RunFilter(group=group), 500)),
                 ("run_list (fingerprint)", lambda: wh.run_list(RunFilter(fingerprint="fp-k"), 500))],
        "run": [*every, ("run_choices", lambda: wh.run_choices(500)), *detail],
        "compare": [*every, *comparing],
        "trends": [*every, *trending],
        "live": [*every, ("run_list (running)", lambda: wh.run_list(RunFilter(status="running"), 50)), *detail[1:-1]],
        "sql": [*every, ("table_columns", wh.table_columns),
                ("read_only_sql (example)", lambda: wh.read_only_sql(example, DEFAULT_ROW_LIMIT)),
                ("read_only_sql (10M rows, cut)", lambda: wh.read_only_sql("SELECT * FROM requests", 10_000))],
    }


def render_times(url: str, run_id: str, runs_dir: Path) -> dict[str, tuple[float, float]]:
    """Each page rendered by AppTest: (ms with empty caches, ms warm)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["PERFHOUSE_WAREHOUSE"] = url
    os.environ["PERFHOUSE_RUNS_DIR"] = str(runs_dir)
    app = str(ROOT / "dashboard" / "app.py")
    times = {}
    pages: tuple[tuple[str, dict[str, str]], ...] = (
        ("runs", {}), ("run", {"run": run_id}), ("compare", {"run": run_id}), ("trends", {}),
        ("live", {"run": run_id}), ("sql", {}))
    for page, params in pages:
        at = AppTest.from_file(app, default_timeout=120)
        at.query_params.update({"page": page, **params})
        at.run()  # a new AppTest's first run also starts its script runner: not part of a page load
        if at.exception:
            raise SystemExit(f"page {page}: {[e.value for e in at.exception]}")
        st.cache_data.clear()
        started = time.perf_counter()
        at.run()
        cold = (time.perf_counter() - started) * 1000
        warm = []
        for _ in range(3):
            started = time.perf_counter()
            at.run()
            warm.append((time.perf_counter() - started) * 1000)
        times[page] = (cold, statistics.median(warm))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warehouse", default=None, help="a warehouse URL (filled unless it holds the runs)")
    parser.add_argument("--work", type=Path, default=None, help="directory for the embedded warehouse")
    add_tiny(parser)
    args = tiny_sizes(parser.parse_args(), runs=4, requests=8_000, repeat=1)

    from tests.support.synthetic import fill
    from warehouse.store import Warehouse

    work = args.work or Path(tempfile.mkdtemp(prefix="perfhouse-dashboard-bench-"))
    url = args.warehouse or f"chdb://{work / 'warehouse'}"
    wh = Warehouse.open(url)
    if not wh.backend.query("SELECT run_id FROM runs WHERE run_id = 'bench-0000'"):
        started = time.perf_counter()
        fill(wh.backend, runs=args.runs, requests=args.requests)
        print(f"filled {url}: {args.requests:,} requests over {args.runs} runs in "
              f"{time.perf_counter() - started:.1f} s (ClickHouse INSERT ... SELECT FROM numbers())")
    total = wh.backend.query("SELECT count() AS n, uniqExact(run_id) AS r FROM requests")[0]
    run_id = wh.run_list(limit=1)[0].run_id
    print(f"warehouse {url}: {int(total['n']):,} requests, {total['r']} runs; the pages show run {run_id}\n")

    reference = timed(lambda: wh.backend.query(
        "SELECT count() AS n FROM requests WHERE run_id = {run:String}", {"run": run_id}), args.repeat)
    print(f"reference: count of one run's requests through the same backend: {reference:.1f} ms\n")
    print(f"{'page':<8} {'query':<34} {'median ms':>10} {'÷ 200 ms':>9} {'÷ reference':>12}")
    worst = 0.0
    for page, reads in page_reads(wh, run_id).items():
        for name, call in reads:
            ms = timed(call, args.repeat)
            worst = max(worst, ms) if not name.startswith("whole") else worst
            flag = "" if ms <= QUERY_TARGET_MS else "  over target"
            print(f"{page:<8} {name:<34} {ms:>10.1f} {ms / QUERY_TARGET_MS:>9.2f} {ms / reference:>12.1f}{flag}")
    print(f"\nslowest single query: {worst:.1f} ms")
    print(ratio("slowest query / 200 ms", worst / QUERY_TARGET_MS, 1.0, higher_is_better=False) + "\n")

    backend = wh.backend
    release = getattr(backend, "release", None)
    if release is not None:
        release()  # AppTest opens the same embedded warehouse in this process
    print(f"{'page':<8} {'cold ms':>9} {'÷ 1 s':>7} {'warm ms':>9} {'÷ 1 s':>7}   (Streamlit AppTest render)")
    rendered = render_times(url, run_id, work / "runs")
    for page, (cold, warm) in rendered.items():
        flag = "" if cold < PAGE_TARGET_MS else "  cold render over target"
        print(f"{page:<8} {cold:>9.0f} {cold / PAGE_TARGET_MS:>7.2f} {warm:>9.0f} {warm / PAGE_TARGET_MS:>7.2f}{flag}")
    slowest = max(cold for cold, _ in rendered.values())
    print(ratio("slowest cold page / 1 s", slowest / PAGE_TARGET_MS, 1.0, higher_is_better=False))
    print(f"\nload average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(timings above are of a shared machine when it is above the core count)")


if __name__ == "__main__":
    main()
