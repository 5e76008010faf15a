"""Every query that reports and the dashboard run: named, parameterised, and checked with sqlglot.

Values only ever reach ClickHouse as query parameters ({name:Type}); no user value is formatted
into SQL text. `check_all()` parses each query with sqlglot's ClickHouse dialect (the tests run it).
"""

from __future__ import annotations

import re

import sqlglot
import sqlglot.expressions as exp

from warehouse.errors import WarehouseError

# Runs are versioned rows (ReplacingMergeTree): FINAL gives each run's latest state.
RUNS = """
SELECT run_id, name, tool, tool_version, spec_name, profile, status, source, environment, git_sha, branch,
       toString(started_at) AS started_at, toString(ended_at) AS ended_at, notes,
       (SELECT count() FROM requests WHERE requests.run_id = runs.run_id) AS requests
FROM runs FINAL
WHERE ({tool:String} = '' OR tool = {tool:String}) AND ({spec:String} = '' OR spec_name = {spec:String})
ORDER BY started_at DESC, run_id DESC
LIMIT {limit:UInt32}
"""

RUN = """
SELECT run_id, name, tool, tool_version, spec_name, spec_hash, script_hash, profile, status, source, environment,
       git_sha, branch, labels, toString(started_at) AS started_at, toString(ended_at) AS ended_at, notes
FROM runs FINAL
WHERE run_id = {run:String}
"""

RUN_PREFIX = """
SELECT run_id FROM runs FINAL WHERE startsWith(run_id, {prefix:String}) ORDER BY started_at DESC LIMIT 2
"""

# Runs still going that name the process which owns them (warehouse/owners.py).
OWNED_RUNNING_RUNS = """
SELECT run_id, labels[{label:String}] AS owner FROM runs FINAL
WHERE status = 'running' AND mapContains(labels, {label:String})
"""

LATEST_RUN = """
SELECT run_id FROM runs FINAL ORDER BY started_at DESC, run_id DESC LIMIT 1
"""

# quantileExactInclusive interpolates between the two nearest samples exactly as k6's trend
# percentiles do, so these figures equal k6's own end-of-test summary.
STEP_STATS = """
SELECT journey, step, any(service) AS service, count() AS count, countIf(ok = 0) AS errors,
       round(avg(duration_ms), 4) AS avg_ms, min(duration_ms) AS min_ms, max(duration_ms) AS max_ms,
       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
       quantileExactInclusive(0.9)(duration_ms) AS p90_ms,
       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,
       quantileExactInclusive(0.99)(duration_ms) AS p99_ms
FROM requests
WHERE run_id = {run:String}
GROUP BY journey, step
ORDER BY journey, step
"""

RUN_TOTALS = """
SELECT count() AS count, countIf(ok = 0) AS errors, avg(duration_ms) AS avg_ms, max(duration_ms) AS max_ms,
       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
       quantileExactInclusive(0.9)(duration_ms) AS p90_ms,
       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,
       quantileExactInclusive(0.99)(duration_ms) AS p99_ms,
       toString(min(ts)) AS first_ts, toString(max(ts)) AS last_ts,
       greatest(dateDiff('millisecond', min(ts), max(ts)) / 1000, 1) AS span_s
FROM requests
WHERE run_id = {run:String}
"""

# One SLO's observation; the scope filters are empty strings when the SLO is overall.
SLO_OBSERVATION = """
SELECT count() AS count, countIf(ok = 0) AS errors,
       countIf(ok = 0) / count() AS error_rate,
       avg(duration_ms) AS avg, max(duration_ms) AS max,
       quantileExactInclusive(0.5)(duration_ms) AS p50,
       quantileExactInclusive(0.9)(duration_ms) AS p90,
       quantileExactInclusive(0.95)(duration_ms) AS p95,
       quantileExactInclusive(0.99)(duration_ms) AS p99,
       count() / greatest(dateDiff('millisecond', min(ts), max(ts)) / 1000, 1) AS throughput
FROM requests
WHERE run_id = {run:String}
  AND ({journey:String} = '' OR journey = {journey:String})
  AND ({step:String} = '' OR step = {step:String})
  AND ({service:String} = '' OR service = {service:String})
"""

SLO_RESULTS = """
SELECT slo, scope, metric, threshold, observed, passed FROM slo_results FINAL
WHERE run_id = {run:String}
ORDER BY slo
"""

LATENCY_OVER_TIME = """
SELECT toStartOfInterval(ts, toIntervalSecond({bucket:UInt32})) AS t, journey, step,
       count() / {bucket:UInt32} AS rps, countIf(ok = 0) AS errors,
       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,
       quantileExactInclusive(0.99)(duration_ms) AS p99_ms
FROM requests
WHERE run_id = {run:String}
GROUP BY t, journey, step
ORDER BY t, journey, step
"""

ERRORS_BY_CAUSE = """
SELECT journey, step, status, error, count() AS count
FROM requests
WHERE run_id = {run:String} AND ok = 0
GROUP BY journey, step, status, error
ORDER BY count DESC
LIMIT 20
"""

ALL = {name: sql for name, sql in globals().items() if name.isupper() and isinstance(sql, str)}

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9()]+)\}")


def check(sql: str) -> exp.Expression:
    """Parse a query with sqlglot's ClickHouse dialect; refuse anything but a single SELECT."""
    try:
        statements = sqlglot.parse(sql, read="clickhouse")
    except sqlglot.errors.ParseError as exc:
        raise WarehouseError(f"not valid ClickHouse SQL: {exc}") from None
    if len(statements) != 1 or statements[0] is None:
        raise WarehouseError("expected exactly one statement")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.Union | exp.Subquery):
        raise WarehouseError(f"only SELECT queries are allowed, found {tree.key.upper()}")
    if any(
        isinstance(node, exp.Insert | exp.Delete | exp.Drop | exp.Create | exp.Alter | exp.Update)
        for node in tree.walk()
    ):
        raise WarehouseError("only SELECT queries are allowed")
    return tree


def parameters(sql: str) -> dict[str, str]:
    """The {name:Type} parameters a query takes."""
    return dict(_PARAM.findall(sql))


def check_all() -> dict[str, exp.Expression]:
    return {name: check(sql) for name, sql in ALL.items()}


# Infrastructure samples scraped during a run (Prometheus exposition), oldest first.
INFRA_SAMPLES = """
SELECT toString(ts) AS ts, source, metric, labels, value
FROM infra_samples
WHERE run_id = {run:String} AND ({metric:String} = '' OR metric = {metric:String})
ORDER BY metric, ts
LIMIT {limit:UInt32}
"""
ALL["INFRA_SAMPLES"] = INFRA_SAMPLES

# Interval aggregates (JMeter's InfluxDB backend listener): what JMeter computed per interval, not requests.
AGGREGATES = """
SELECT toString(ts) AS ts, tool, journey, step, status, metric, value, tags
FROM aggregates
WHERE run_id = {run:String} AND ({metric:String} = '' OR metric = {metric:String})
ORDER BY journey, step, status, metric, ts
"""
ALL["AGGREGATES"] = AGGREGATES

# A tool's own end-of-test summaries kept with a run (k6 --summary-export / handleSummary JSON).
TOOL_SUMMARIES = """
SELECT name, tool, summary FROM tool_summaries FINAL
WHERE run_id = {run:String}
ORDER BY name
"""
ALL["TOOL_SUMMARIES"] = TOOL_SUMMARIES

# A table's engine clause as ClickHouse keeps it (its TTL included).
TABLE_ENGINE = """
SELECT engine_full, create_table_query FROM system.tables
WHERE database = currentDatabase() AND name = {table:String}
"""
ALL["TABLE_ENGINE"] = TABLE_ENGINE
