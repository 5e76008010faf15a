"""Every query that reports and the dashboard run: named, parameterised, and checked with sqlglot.

Values only ever reach ClickHouse as query parameters ({name:Type}); no user value is formatted
into SQL text. `check_all()` parses each query with sqlglot's ClickHouse dialect (the tests run it).
"""

from __future__ import annotations

import re

import sqlglot
import sqlglot.expressions as exp

from warehouse.errors import WarehouseError

# The one definition of a failed request that every error count and error rate uses (a condition on requests).
REQUEST_ERROR = "ok = 0"

# Runs are versioned rows (ReplacingMergeTree): FINAL gives each run's latest state.
RUNS = """
SELECT run_id, name, tool, tool_version, spec_name, profile, status, source, environment, git_sha, branch,
       fingerprint, group_id,
       toString(started_at) AS started_at, toString(ended_at) AS ended_at, notes,
       (SELECT count() FROM requests WHERE requests.run_id = runs.run_id) AS requests
FROM runs FINAL
WHERE ({tool:String} = '' OR tool = {tool:String}) AND ({spec:String} = '' OR spec_name = {spec:String})
  AND startsWith(group_id, {group:String}) AND startsWith(fingerprint, {fingerprint:String})
ORDER BY started_at DESC, run_id DESC
LIMIT {limit:UInt32}
"""

RUN = """
SELECT run_id, name, tool, tool_version, spec_name, spec_hash, fingerprint, group_id, script_hash, profile, status, source, environment,
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
STEP_STATS = f"""
SELECT journey, step, any(service) AS service, count() AS count, countIf({REQUEST_ERROR}) AS errors,
       round(avg(duration_ms), 4) AS avg_ms, min(duration_ms) AS min_ms, max(duration_ms) AS max_ms,
       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
       quantileExactInclusive(0.9)(duration_ms) AS p90_ms,
       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,
       quantileExactInclusive(0.99)(duration_ms) AS p99_ms
FROM requests
WHERE run_id = {{run:String}}
GROUP BY journey, step
ORDER BY journey, step
"""

RUN_TOTALS = f"""
SELECT count() AS count, countIf({REQUEST_ERROR}) AS errors, avg(duration_ms) AS avg_ms, max(duration_ms) AS max_ms,
       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
       quantileExactInclusive(0.9)(duration_ms) AS p90_ms,
       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,
       quantileExactInclusive(0.99)(duration_ms) AS p99_ms,
       toString(min(ts)) AS first_ts, toString(max(ts)) AS last_ts,
       greatest(dateDiff('millisecond', min(ts), max(ts)) / 1000, 1) AS span_s
FROM requests
WHERE run_id = {{run:String}}
"""

# One SLO's observation; the scope filters are empty strings when the SLO is overall.
SLO_OBSERVATION = f"""
SELECT count() AS count, countIf({REQUEST_ERROR}) AS errors,
       countIf({REQUEST_ERROR}) / count() AS error_rate,
       avg(duration_ms) AS avg, max(duration_ms) AS max,
       quantileExactInclusive(0.5)(duration_ms) AS p50,
       quantileExactInclusive(0.9)(duration_ms) AS p90,
       quantileExactInclusive(0.95)(duration_ms) AS p95,
       quantileExactInclusive(0.99)(duration_ms) AS p99,
       count() / greatest(dateDiff('millisecond', min(ts), max(ts)) / 1000, 1) AS throughput
FROM requests
WHERE run_id = {{run:String}}
  AND ({{journey:String}} = '' OR journey = {{journey:String}})
  AND ({{step:String}} = '' OR step = {{step:String}})
  AND ({{service:String}} = '' OR service = {{service:String}})
"""

SLO_RESULTS = """
SELECT slo, scope, metric, threshold, observed, passed FROM slo_results FINAL
WHERE run_id = {run:String}
ORDER BY slo
"""

LATENCY_OVER_TIME = f"""
SELECT toStartOfInterval(ts, toIntervalSecond({{bucket:UInt32}})) AS t, journey, step,
       count() / {{bucket:UInt32}} AS rps, countIf({REQUEST_ERROR}) AS errors,
       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,
       quantileExactInclusive(0.99)(duration_ms) AS p99_ms
FROM requests
WHERE run_id = {{run:String}}
GROUP BY t, journey, step
ORDER BY t, journey, step
"""

ERRORS_BY_CAUSE = f"""
SELECT journey, step, status, error, count() AS count
FROM requests
WHERE run_id = {{run:String}} AND {REQUEST_ERROR}
GROUP BY journey, step, status, error
ORDER BY count DESC
LIMIT 20
"""

# -- regression analysis: comparable runs, compare, trends ------------------------------------------------

# The steps an imported run's requests name: its structure when no spec says it.
RUN_STEP_SHAPES = """
SELECT DISTINCT journey, step FROM requests WHERE run_id = {run:String} ORDER BY journey, step
"""

# Per run, per step and over the whole run (overall = 1, journey and step empty), the figures a compare shows.
# q94/q96 bracket p95 so that its sampling error follows from the density there; span_s of the overall row is
# the run's span (first to last request), which throughput divides by, as RUN_TOTALS does.
COMPARE_STATS = f"""
SELECT run_id, journey, step, grouping(journey, step) != 0 AS overall,
       count() AS count, countIf({REQUEST_ERROR}) AS errors,
       quantileExactInclusive(0.5)(duration_ms) AS p50,
       quantileExactInclusive(0.94)(duration_ms) AS q94,
       quantileExactInclusive(0.95)(duration_ms) AS p95,
       quantileExactInclusive(0.96)(duration_ms) AS q96,
       quantileExactInclusive(0.99)(duration_ms) AS p99,
       greatest(dateDiff('millisecond', min(ts), max(ts)) / 1000, 1) AS span_s
FROM requests
WHERE run_id IN ({{a:String}}, {{b:String}})
GROUP BY GROUPING SETS ((run_id, journey, step), (run_id))
ORDER BY overall, journey, step, run_id
"""

# Do the two runs' durations come from one distribution? The Kolmogorov-Smirnov p-value (asymptotic: exact
# is far slower on large runs) per step and over the steps together (overall = 1); run b is sample 1.
# {journeys} and {steps} list (pairwise) the steps both runs have when some step is in one run only (empty:
# every step), as a test needs both samples. The overall set groups by a column (true on every row), not (), which would aggregate
# zero rows into a failing test.
COMPARE_TESTS = """
SELECT journey, step, grouping(journey, step) != 0 AS overall, run_id IN ({a:String}, {b:String}) AS compared,
       tupleElement(kolmogorovSmirnovTest('two-sided', 'asymp')(duration_ms, toUInt8(run_id = {b:String})), 2) AS ks_p
FROM requests
WHERE run_id IN ({a:String}, {b:String})
  AND (empty({steps:Array(String)}) OR has(arrayZip({journeys:Array(String)}, {steps:Array(String)}), (journey, step)))
GROUP BY GROUPING SETS ((journey, step), (compared))
ORDER BY overall, journey, step
"""

# The comparable runs (completed or imported) a trend or the noise of a history reads: the newest {runs} of each
# fingerprint started before {before} ({before} empty: no bound), optionally of one fingerprint or spec,
# leaving out {exclude}.
_HISTORY_RUNS = """
    SELECT run_id, fingerprint, started_at, tool, profile, spec_name, environment
    FROM runs FINAL
    WHERE status IN ('completed', 'imported') AND fingerprint != ''
      AND ({fingerprint:String} = '' OR fingerprint = {fingerprint:String})
      AND ({spec:String} = '' OR spec_name = {spec:String})
      AND ({before:String} = '' OR started_at < parseDateTime64BestEffortOrNull({before:String}, 3, 'UTC'))
      AND run_id != {exclude:String}
    ORDER BY started_at DESC, run_id DESC
    LIMIT {runs:UInt32} BY fingerprint
"""

# Per run and step of those runs (and per run: journey and step empty, over the journey and step chosen), the
# figures of a trend, oldest first; throughput over the span of the requests counted.
STEP_HISTORY = f"""
SELECT h.fingerprint AS fingerprint, h.run_id AS run_id, toString(h.started_at) AS started_at, h.tool AS tool,
       h.profile AS profile, h.spec_name AS spec_name, h.environment AS environment, r.journey AS journey,
       r.step AS step, count() AS count, countIf({REQUEST_ERROR}) / count() AS error_rate,
       quantileExactInclusive(0.5)(r.duration_ms) AS p50,
       quantileExactInclusive(0.95)(r.duration_ms) AS p95,
       quantileExactInclusive(0.99)(r.duration_ms) AS p99,
       count() / greatest(dateDiff('millisecond', min(r.ts), max(r.ts)) / 1000, 1) AS rps
FROM requests AS r
INNER JOIN ({_HISTORY_RUNS}) AS h ON r.run_id = h.run_id
WHERE ({{journey:String}} = '' OR r.journey = {{journey:String}}) AND ({{step:String}} = '' OR r.step = {{step:String}})
GROUP BY GROUPING SETS (
    (h.fingerprint, h.run_id, h.started_at, h.tool, h.profile, h.spec_name, h.environment, r.journey, r.step),
    (h.fingerprint, h.run_id, h.started_at, h.tool, h.profile, h.spec_name, h.environment)
)
ORDER BY fingerprint, journey, step, h.started_at, run_id
"""

# The p95 per run and step (and per run) of a fingerprint's history, oldest first: its run-to-run noise.
NOISE_HISTORY = f"""
SELECT h.run_id AS run_id, r.journey AS journey, r.step AS step,
       quantileExactInclusive(0.95)(r.duration_ms) AS p95
FROM requests AS r
INNER JOIN ({_HISTORY_RUNS}) AS h ON r.run_id = h.run_id
GROUP BY GROUPING SETS ((h.run_id, h.started_at, r.journey, r.step), (h.run_id, h.started_at))
ORDER BY journey, step, h.started_at, run_id
"""

# The runs of one fingerprint newest first, with their stored SLO results: where an automatic baseline is found.
FINGERPRINT_RUNS = """
SELECT r.run_id AS run_id, r.status AS status, toString(r.started_at) AS started,
       ifNull(s.slos, 0) AS slos, ifNull(s.failed, 0) AS slos_failed
FROM runs AS r FINAL
LEFT JOIN (
    SELECT run_id, count() AS slos, countIf(passed = 0) AS failed FROM slo_results FINAL GROUP BY run_id
) AS s ON r.run_id = s.run_id
WHERE r.fingerprint = {fingerprint:String} AND r.run_id != {exclude:String}
  AND ({before:String} = '' OR r.started_at <= parseDateTime64BestEffortOrNull({before:String}, 3, 'UTC'))
ORDER BY r.started_at DESC, r.run_id DESC
LIMIT {limit:UInt32}
"""

BASELINES = """
SELECT fingerprint, run_id, note, toString(updated_at) AS pinned_at FROM baselines FINAL
WHERE pinned = 1 AND ({fingerprint:String} = '' OR fingerprint = {fingerprint:String})
ORDER BY fingerprint
"""

# The runs of the newest group that holds more than one run (k6 and JMeter of one invocation), oldest first.
LATEST_GROUP = """
SELECT run_id, tool FROM runs FINAL
WHERE group_id = (
    SELECT group_id FROM runs FINAL WHERE group_id != '' AND ({group:String} = '' OR startsWith(group_id, {group:String}))
    GROUP BY group_id HAVING count() > 1 ORDER BY max(started_at) DESC LIMIT 1
)
ORDER BY tool, started_at
"""

COMPARISONS = """
SELECT run_id, baseline_id, journey, step, count_a, count_b, p50_a, p50_b, p95_a, p95_b, p99_a, p99_b,
       error_rate_a, error_rate_b, rps_a, rps_b, p_value, floor, noise, verdict, reason,
       toString(compared_at) AS compared_at
FROM comparisons FINAL
WHERE run_id = {run:String} AND ({baseline:String} = '' OR baseline_id = {baseline:String})
ORDER BY journey, step
"""

ALL = {name: sql for name, sql in globals().items() if name.isupper() and name[0] != "_" and isinstance(sql, str)}
ALL.pop("REQUEST_ERROR")

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
