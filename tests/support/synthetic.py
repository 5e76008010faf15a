"""A large warehouse made by ClickHouse itself (INSERT ... SELECT FROM numbers()): runs, requests, SLO results
and infrastructure samples in realistic shapes, for the dashboard benchmark and the SQL page's limit tests.

Request durations are log-normal per step: in whole milliseconds in JMeter's runs (as a JTL has them, ties and
all, so their kept histograms are small) and to the microsecond in k6's. About 1 % of requests fail, timestamps
are spread over each run's minutes; nothing is written through Python rows, so 10 million requests take seconds.
Each run's rows are one batch recorded done, with the step summaries an ingest's commit writes.
"""

from __future__ import annotations

from warehouse.engine.backends import Backend
from warehouse.engine.summaries import summarise_all

STEPS = [("browse", "list"), ("browse", "detail"), ("browse", "search"), ("browse", "reviews"),
         ("cart", "add"), ("cart", "view"), ("cart", "remove"), ("checkout", "address"),
         ("checkout", "shipping"), ("checkout", "pay"), ("checkout", "confirm"), ("account", "login")]

# Synthetic rows: literal SQL (no user values); the sizes are integers checked by the callers' types.
_RUNS = """
INSERT INTO runs (run_id, name, tool, tool_version, spec_name, spec_hash, script_hash, profile, git_sha, branch,
                  environment, labels, source, status, notes, started_at, ended_at, updated_at, fingerprint, group_id)
SELECT concat('bench-', leftPad(toString(number), 4, '0')) AS run_id, concat('shop/', profile) AS name,
       if(number % 2 = 0, 'k6', 'jmeter') AS tool, if(number % 2 = 0, '1.1.0', '5.6') AS tool_version,
       ['shop', 'catalog', 'payments'][number % 3 + 1] AS spec_name, 'h' AS spec_hash, 's' AS script_hash,
       ['ci', 'steady', 'spike'][intDiv(number, 2) % 3 + 1] AS profile, hex(number) AS git_sha,
       if(number % 5 = 0, 'feature', 'main') AS branch, if(number % 4 = 0, 'staging', 'ci') AS environment,
       map('team', 'shop') AS labels, 'perfhouse' AS source,
       ['completed', 'completed', 'completed', 'failed', 'aborted'][number % 5 + 1] AS status, '' AS notes,
       toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalHour(number * 6) AS started_at,
       started_at + toIntervalSecond({seconds:UInt32}) AS ended_at, now64(6) AS updated_at,
       concat('fp-', tool) AS fingerprint, concat('invocation-', toString(intDiv(number, 2))) AS group_id
FROM numbers({runs:UInt32})
"""

_REQUESTS = """
INSERT INTO requests (run_id, batch, ts, tool, generator, journey, step, service, method, url, status, ok,
                      duration_ms, waiting_ms, connect_ms, bytes_sent, bytes_received, error, vu)
SELECT concat('bench-', leftPad(toString(intDiv(number, {per_run:UInt64})), 4, '0')) AS run_id, run_id AS batch,
       toDateTime64('2026-01-01 00:00:00', 6, 'UTC') + toIntervalHour(intDiv(number, {per_run:UInt64}) * 6)
           + toIntervalMillisecond(intDiv((number % {per_run:UInt64}) * {seconds:UInt32} * 1000, {per_run:UInt64}))
           AS ts,
       if(intDiv(number, {per_run:UInt64}) % 2 = 0, 'k6', 'jmeter') AS tool, '' AS generator,
       {journeys:Array(String)}[number % 12 + 1] AS journey, {steps:Array(String)}[number % 12 + 1] AS step,
       'api' AS service, if(number % 12 IN (4, 6, 9), 'POST', 'GET') AS method, concat('/', step) AS url,
       if(cityHash64(number) % 100 = 0, 503, 200) AS status, status = 200 AS ok,
       round(exp(2.5 + (number % 12) / 8 + randNormal(0, 0.45)), if(tool = 'jmeter', 0, 3)) AS duration_ms,
       duration_ms * 0.9 AS waiting_ms, 0.1 AS connect_ms, 200 AS bytes_sent, 1500 AS bytes_received,
       if(ok, '', 'service unavailable') AS error, toString(number % 50) AS vu
FROM numbers({rows:UInt64})
"""

# Each run's rows as one batch recorded done, as an ingest leaves them (its batch id is the run id).
_BATCHES = """
INSERT INTO ingested_files (batch, run_id, sha256, quick, path, format, state, rows, rejected, ingested_at, owner,
                            new_run)
SELECT run_id AS batch, run_id, concat('synthetic-', run_id), '', 'synthetic', 'synthetic', 'done',
       {per_run:UInt64}, 0, now64(3), '', 1
FROM (SELECT concat('bench-', leftPad(toString(number), 4, '0')) AS run_id FROM numbers({runs:UInt32}))
"""

_SLOS = """
INSERT INTO slo_results (run_id, slo, scope, metric, threshold, observed, passed, evaluated_at)
SELECT concat('bench-', leftPad(toString(intDiv(number, 2)), 4, '0')), concat('overall ', m, ' < 300 ms'),
       'overall', m, 300, 200 + number % 7 * 20, (200 + number % 7 * 20) < 300, now64(3)
FROM numbers({runs:UInt32} * 2)
ARRAY JOIN [if(number % 2 = 0, 'p95', 'p99')] AS m
"""

_INFRA = """
INSERT INTO infra_samples (run_id, ts, source, metric, labels, value)
SELECT concat('bench-', leftPad(toString(intDiv(number, {per_run:UInt64})), 4, '0')),
       toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalHour(intDiv(number, {per_run:UInt64}) * 6)
           + toIntervalSecond(intDiv(number % {per_run:UInt64}, 3) * 5),
       'http://127.0.0.1:9100/metrics', ['process_cpu_seconds_total', 'process_resident_memory_bytes',
       'node_load1'][number % 3 + 1], map('instance', 'api'),
       if(number % 3 = 0, (number % {per_run:UInt64}) * 0.7, if(number % 3 = 1, 2e8 + (number % 97) * 1e6,
          1 + (number % 13) / 10))
FROM numbers({runs:UInt32} * {per_run:UInt64})
"""


def fill(backend: Backend, runs: int = 200, requests: int = 10_000_000, seconds: int = 600) -> None:
    """Write `runs` runs holding `requests` requests between them, SLO results and infra samples."""
    per_run = max(1, requests // runs)
    samples_per_run = 3 * (seconds // 5)
    with backend.session():
        backend.command(_RUNS, {"runs": runs, "seconds": seconds})
        backend.command(_REQUESTS, {"rows": per_run * runs, "per_run": per_run, "seconds": seconds,
                                    "journeys": [j for j, _ in STEPS], "steps": [s for _, s in STEPS]})
        backend.command(_BATCHES, {"runs": runs, "per_run": per_run})
        summarise_all(backend)  # what each batch's commit writes
        backend.command(_SLOS, {"runs": runs})
        backend.command(_INFRA, {"runs": runs, "per_run": samples_per_run})
