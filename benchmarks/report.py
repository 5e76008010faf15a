"""Report benchmark (a command, not a test): the HTML report of a run of 10 million requests.

    python benchmarks/report.py [--requests 10000000] [--work DIR] [--tiny]

ClickHouse builds the run itself (INSERT ... SELECT from numbers(): five steps, an hour of a stepped load
with errors, and scraped CPU samples) in an embedded warehouse. Then, in ONE process, it times: a reference
scan (count and one exact median of the run's durations), the report's queries, the HTML rendering (charts
drawn to SVG; the first rendering also starts the chart renderer), and a second, warm report. It prints
each time, the ratio of the report to the reference, and the 5 s target.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_tiny, ratio, tiny_sizes  # noqa: E402

TARGET_S = 5.0
RUN_ID = "20260101-090000-k6-bench"

# An hour of requests, evenly spread; the load level (distinct VUs per second) steps up every 15 minutes.
FILL = """
INSERT INTO requests (run_id, batch, ts, tool, generator, journey, step, service, method, url, status, ok,
                      duration_ms, waiting_ms, connect_ms, bytes_sent, bytes_received, error, vu)
SELECT {run:String}, 'bench', toDateTime64('2026-01-01 09:00:00', 6, 'UTC') + toIntervalMicrosecond(
           intDiv(number * 3600000000, {requests:UInt64})) AS t,
       'k6', '', ['shop', 'shop', 'checkout', 'checkout', 'search'][number % 5 + 1],
       ['list', 'detail', 'cart', 'pay', 'query'][number % 5 + 1], 'api', 'GET', 'http://127.0.0.1/x',
       if(number % 97 = 0, 503, 200), number % 97 != 0,
       exp(3 + 0.5 * randNormal(0, 1) + intDiv(number * 4, {requests:UInt64}) * 0.4), 0, 0, 100, 1000,
       if(number % 97 = 0, 'Service Unavailable', ''),
       toString(number % (10 * (intDiv(number * 4, {requests:UInt64}) + 1)))
FROM numbers({requests:UInt64})
"""

INFRA = """
INSERT INTO infra_samples (run_id, ts, source, metric, labels, value)
SELECT {run:String}, toDateTime64('2026-01-01 09:00:00', 3, 'UTC') + toIntervalSecond(number * 5),
       'http://127.0.0.1:9100/metrics', 'sut_cpu_ratio', map('host', 'app'),
       (intDiv(number * 5, 900) + 1) / 4 + 0.02 * randNormal(0, 1)
FROM numbers(720)
"""

REFERENCE = """
SELECT count() AS n, quantileExactInclusive(0.5)(duration_ms) AS p50 FROM requests WHERE run_id = {run:String}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--work", type=Path, default=None, help="keep the warehouse here (default: a temp dir)")
    add_tiny(parser)
    args = tiny_sizes(parser.parse_args(), requests=20_000)
    with tempfile.TemporaryDirectory(prefix="perfhouse-bench-") as tmp:
        work = args.work or Path(tmp)
        run(work, args.requests)


def run(work: Path, requests: int) -> None:
    from warehouse.analysis.slo import Objective
    from warehouse.report.report_formats import render_html, report
    from warehouse.report.reports import ReportOptions, build_group_report
    from warehouse.store import RunInfo, Warehouse

    wh = Warehouse.open(f"chdb://{work / 'warehouse'}")
    with wh.backend.session():
        have = wh.backend.query("SELECT count() AS n FROM requests WHERE run_id = {run:String}", {"run": RUN_ID})
        if int(have[0]["n"]) != requests:
            started = time.perf_counter()
            wh.backend.command("ALTER TABLE requests DELETE WHERE run_id = {run:String} SETTINGS mutations_sync = 2",
                               {"run": RUN_ID})
            wh.backend.command(FILL, {"run": RUN_ID, "requests": requests})
            wh.backend.command(INFRA, {"run": RUN_ID})
            wh.backend.command("OPTIMIZE TABLE requests FINAL")
            print(f"built {requests:,} requests in {time.perf_counter() - started:.1f} s")
        wh.save_run(RunInfo(RUN_ID, "k6", status="completed", name="bench/capacity", spec_name="bench",
                            profile="capacity", started_at="2026-01-01 09:00:00.000",
                            ended_at="2026-01-01 10:00:00.000"))
        wh.evaluate_slos(RUN_ID, [Objective("p95", 200.0), Objective("p99.9", 1000.0, journey="shop", step="detail"),
                                  Objective("error_rate", 0.02)])

        started = time.perf_counter()
        wh.backend.query(REFERENCE, {"run": RUN_ID})
        reference = time.perf_counter() - started

        options = ReportOptions((50, 75, 90, 95, 99, 99.9))
        started = time.perf_counter()
        page = report(wh, [RUN_ID], "html", options).text  # as `perfhouse report --format html` does
        cold = time.perf_counter() - started
        started = time.perf_counter()
        doc = build_group_report(wh, [RUN_ID], options)
        warm_q = time.perf_counter() - started
        render_html(doc)
        warm = time.perf_counter() - started
        (work / "report.html").write_text(page, encoding="utf-8")

    print(f"machine: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (times scale with it; "
          "the ratios less)")
    print(f"reference scan (count + exact median of {requests:,} durations): {reference:.2f} s")
    print(f"HTML report, first in the process: {cold:.2f} s (the chart renderer starting meanwhile); "
          f"{cold / reference:.1f}x the reference scan")
    print(f"HTML report, again:                {warm:.2f} s (queries {warm_q:.2f} s, rendering {warm - warm_q:.2f} s); "
          f"{warm / reference:.1f}x the reference scan")
    print(ratio(f"first HTML report / {TARGET_S:.0f} s", cold / TARGET_S, 1.0, higher_is_better=False))
    print(f"report: {work / 'report.html'} ({len(page):,} bytes, {page.count('<figure')} charts)")


if __name__ == "__main__":
    main()
