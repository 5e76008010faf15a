"""Every query that reports and the dashboard run: named, parameterised, and checked with sqlglot.

Values only ever reach ClickHouse as query parameters ({name:Type}); no user value is formatted
into SQL text. `check_all()` parses each query with sqlglot's ClickHouse dialect (the tests run it).

Long by design: every read the product makes lives here as data, so one test parses them all and a reader
finds any query by its name in one file.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warehouse.errors import WarehouseError

if TYPE_CHECKING:  # sqlglot loads when a query is checked, not with the queries
    import sqlglot.expressions as exp


@dataclass(frozen=True)
class Failure:
    """One of the two ways a request fails, as a condition on a row of `requests`: every query, report and
    SLO that counts it uses this one definition."""

    name: str  # the rate's name in reports, SLOs and JSON output
    kind: str  # what one such failure is called
    condition: str
    meaning: str

    @property
    def count(self) -> str:
        return f"countIf({self.condition})"

    @property
    def rate(self) -> str:
        return f"countIf({self.condition}) / count()"


# A request error: the request got no response (a transport failure) or a status its step does not expect.
REQUEST_ERROR = Failure(
    "error_rate", "request error", "ok = 0", "request errors: a transport failure or a status the step does not expect"
)
# A failed check: the response came, but at least one of the step's checks (body, headers, JSONPath,
# duration, status) said no. k6: its `checks` points; JMeter: its assertion results.
CHECK_FAILURE = Failure(
    "check_failure_rate", "failed check", "failed_checks > 0", "requests with a failed check (body, header, JSONPath, duration, status)"
)
FAILURES = (REQUEST_ERROR, CHECK_FAILURE)
# What the queries below write as $errors, $request_error, $check_failure...: the two failures' definitions.
_FAILURE_SQL = {
    "errors": f"{REQUEST_ERROR.count} AS errors, {CHECK_FAILURE.count} AS check_failures, "
    "sum(checks) AS checks_total, sum(failed_checks) AS checks_failed",
    "request_error": REQUEST_ERROR.condition,
    "request_errors": REQUEST_ERROR.count,
    "error_rate": f"{REQUEST_ERROR.rate} AS {REQUEST_ERROR.name}",
    "check_failure": CHECK_FAILURE.condition,
    "check_failures": CHECK_FAILURE.count,
    "check_failure_rate": f"{CHECK_FAILURE.rate} AS {CHECK_FAILURE.name}",
    "request_error_kind": REQUEST_ERROR.kind,
    "check_failure_kind": CHECK_FAILURE.kind,
}


def _with_failures(sql: str) -> str:
    return string.Template(sql).substitute(_FAILURE_SQL)


# Runs are versioned rows (ReplacingMergeTree): FINAL gives each run's latest state. The request counts of
# the listed runs are joined, not a correlated subquery (which a Distributed table on a cluster refuses).
RUNS = """
SELECT run_id, name, tool, tool_version, spec_name, profile, status, source, environment, git_sha, branch,
       fingerprint, group_id,
       toString(started_at) AS started_at, toString(ended_at) AS ended_at, notes,
       counted.requests AS requests
FROM runs FINAL
LEFT JOIN (
    SELECT run_id, count() AS requests FROM requests
    WHERE run_id IN (
        SELECT run_id FROM runs FINAL
        WHERE ({tool:String} = '' OR tool = {tool:String}) AND ({spec:String} = '' OR spec_name = {spec:String})
          AND startsWith(group_id, {group:String}) AND startsWith(fingerprint, {fingerprint:String})
        ORDER BY started_at DESC, run_id DESC
        LIMIT {limit:UInt32}
    )
    GROUP BY run_id
) AS counted USING (run_id)
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

# Runs still going that name the process which owns them (warehouse/engine/owners.py).
OWNED_RUNNING_RUNS = """
SELECT run_id, labels[{label:String}] AS owner FROM runs FINAL
WHERE status = 'running' AND mapContains(labels, {label:String})
"""

# What opening a warehouse checks at once: the schema versions applied, the batches left unfinished (in any state
# but the two final ones: warehouse.ingest.UNFINISHED), the staging tables left over and the owners of running
# runs (warehouse.store; each needs work only when it says so).
OPEN_CHECK = """
SELECT (SELECT arraySort(groupUniqArray(version)) FROM schema_migrations) AS versions,
       (SELECT count() FROM ingested_files FINAL WHERE state != 'done' AND state != 'failed') AS unfinished,
       (SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE 'stage\\_%') AS staged,
       (SELECT groupArray(labels[{label:String}]) FROM runs FINAL
        WHERE status = 'running' AND mapContains(labels, {label:String})) AS owners
"""

# `latest` is the run recorded last (created by `run`, or imported by `ingest`), not the one that started last:
# after importing older history it is the run just imported. A run id begins with the time it was created
# (warehouse.engine.ids); an id of another shape counts from its start time.
LATEST_RUN = """
SELECT run_id FROM runs FINAL
ORDER BY CASE WHEN match(run_id, '^[0-9]{8}-[0-9]{6}-') THEN left(run_id, 15)
              ELSE formatDateTime(started_at, '%Y%m%d-%H%i%S') END DESC, started_at DESC, run_id DESC
LIMIT 1
"""

# quantileExactInclusive interpolates between the two nearest samples exactly as k6's trend
# percentiles do, so these figures equal k6's own end-of-test summary.
STEP_STATS = _with_failures("""
SELECT journey, step, any(service) AS service, count() AS count, $errors,
       round(avg(duration_ms), 4) AS avg_ms, min(duration_ms) AS min_ms, max(duration_ms) AS max_ms,
       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
       quantileExactInclusive(0.9)(duration_ms) AS p90_ms,
       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,
       quantileExactInclusive(0.99)(duration_ms) AS p99_ms
FROM requests
WHERE run_id = {run:String}
GROUP BY journey, step
ORDER BY journey, step
""")

RUN_TOTALS = _with_failures("""
SELECT count() AS count, $errors, avg(duration_ms) AS avg_ms, max(duration_ms) AS max_ms,
       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
       quantileExactInclusive(0.9)(duration_ms) AS p90_ms,
       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,
       quantileExactInclusive(0.99)(duration_ms) AS p99_ms,
       toString(min(ts)) AS first_ts, toString(max(ts)) AS last_ts,
       greatest(dateDiff('millisecond', min(ts), max(ts)) / 1000, 1) AS span_s
FROM requests
WHERE run_id = {run:String}
""")

# One SLO's observation; the scope filters are empty strings when the SLO is overall.
SLO_OBSERVATION = _with_failures("""
SELECT count() AS count, $request_errors AS errors, $error_rate, $check_failure_rate,
       avg(duration_ms) AS avg, max(duration_ms) AS max,
       quantileExactInclusive(0.5)(duration_ms) AS p50,
       quantileExactInclusive(0.9)(duration_ms) AS p90,
       quantileExactInclusive(0.95)(duration_ms) AS p95,
       quantileExactInclusive(0.99)(duration_ms) AS p99,
       quantileExactInclusive({level:Float64})(duration_ms) AS percentile,
       count() / greatest(dateDiff('millisecond', min(ts), max(ts)) / 1000, 1) AS throughput
FROM requests
WHERE run_id = {run:String}
  AND ({journey:String} = '' OR journey = {journey:String})
  AND ({step:String} = '' OR step = {step:String})
  AND ({service:String} = '' OR service = {service:String})
""")

# Every SLO of a run in one read: a group per scope (the three arrays side by side give each scope's journey, step
# and service, '' for any) with SLO_OBSERVATION's figures, the percentiles at the SLOs' levels in slots q1..q12 as
# REPORT_STEPS has them. A scope without requests has no row.
SLO_OBSERVATIONS = _with_failures("""
SELECT tupleElement(scope, 1) AS scope_journey, tupleElement(scope, 2) AS scope_step,
       tupleElement(scope, 3) AS scope_service, count() AS count, $request_errors AS errors,
       $error_rate, $check_failure_rate, avg(duration_ms) AS avg, max(duration_ms) AS max,
       quantilesExactInclusive({q1:Float64}, {q2:Float64}, {q3:Float64}, {q4:Float64}, {q5:Float64}, {q6:Float64},
                               {q7:Float64}, {q8:Float64}, {q9:Float64}, {q10:Float64}, {q11:Float64},
                               {q12:Float64})(duration_ms) AS levels,
       count() / greatest(dateDiff('millisecond', min(ts), max(ts)) / 1000, 1) AS throughput
FROM requests
ARRAY JOIN arrayZip({journeys:Array(String)}, {steps:Array(String)}, {services:Array(String)}) AS scope
WHERE run_id = {run:String} AND (scope_journey = '' OR journey = scope_journey)
  AND (scope_step = '' OR step = scope_step) AND (scope_service = '' OR service = scope_service)
GROUP BY scope_journey, scope_step, scope_service
""")

SLO_RESULTS = """
SELECT slo, scope, metric, threshold, observed, passed FROM slo_results FINAL
WHERE run_id = {run:String}
ORDER BY slo
"""

LATENCY_OVER_TIME = _with_failures("""
SELECT toStartOfInterval(ts, toIntervalSecond({bucket:UInt32})) AS t, journey, step,
       count() / {bucket:UInt32} AS rps, $request_errors AS errors, $check_failures AS check_failures,
       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,
       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,
       quantileExactInclusive(0.99)(duration_ms) AS p99_ms
FROM requests
WHERE run_id = {run:String}
GROUP BY t, journey, step
ORDER BY t, journey, step
""")

# Request errors by status and message, and failed checks by the first check that failed, apart.
ERRORS_BY_CAUSE = _with_failures("""
SELECT kind, journey, step, status, error, count() AS count
FROM (
    SELECT '$request_error_kind' AS kind, journey, step, status, error FROM requests
    WHERE run_id = {run:String} AND $request_error
    UNION ALL
    SELECT '$check_failure_kind' AS kind, journey, step, status, failed_check AS error FROM requests
    WHERE run_id = {run:String} AND $check_failure
)
GROUP BY kind, journey, step, status, error
ORDER BY count DESC
LIMIT 20
""")

# -- regression analysis: comparable runs, compare, trends ------------------------------------------------

# Per run, per step and over the whole run (overall = 1, journey and step empty), the figures a compare shows.
# q94/q96 bracket p95 so that its sampling error follows from the density there; span_s of the overall row is
# the run's span (first to last request), which throughput divides by, as RUN_TOTALS does.
COMPARE_STATS = f"""
SELECT run_id, journey, step, grouping(journey, step) != 0 AS overall,
       count() AS count, countIf({REQUEST_ERROR.condition}) AS errors,
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

# -- step summaries (warehouse/engine/summaries.py) ---------------------------------------------------------

# A run's step summary is computed from histograms: per step, each distinct duration with its number of requests,
# request errors, first and last request. Each batch's histogram is kept in step_histograms, written when the batch
# commits from its own rows alone (those of a staged batch in its staging requests table, those of a small batch
# loaded straight into requests by its batch id), so a summary adds up the kept histograms of the run's batches and
# never reads the run's requests again: a live run that commits a batch every few seconds costs each commit the same.
# Columns: journey, step, duration_ms, n, errors, first_ts, last_ts.
# What a histogram holds of each duration: the same in a batch's commit and in a rebuild of every batch's.
_HISTOGRAM_FIGURES = (f"duration_ms, count() AS n, countIf({REQUEST_ERROR.condition}) AS errors, min(ts) AS first_ts, "
                      "max(ts) AS last_ts")
_STEP_HISTOGRAM = f"""
SELECT journey, step, {_HISTOGRAM_FIGURES}
FROM {{source}}{{where}}
GROUP BY journey, step, duration_ms
"""


def batch_histogram(source: str, by_batch: bool) -> str:
    """The histogram of batch {batch} of run {run}, as step_histograms keeps it (its columns in their order): from `source` (a quoted table name)
    holding that batch alone (its staging requests table), or, `by_batch`, from the batch's rows among others
    (requests)."""
    where = "\nWHERE run_id = {run:String} AND batch = {batch:String}" if by_batch else ""
    return (f"SELECT {{run:String}} AS run_id, {{batch:String}} AS batch, * FROM "
            f"({_STEP_HISTOGRAM.format(source=source, where=where).strip()})")


# The histograms of every batch recorded done, from their rows in requests (the summaries of a warehouse whose
# histograms are not kept yet: engine.summaries.summarise_all).
DONE_BATCH_HISTOGRAMS = f"""
SELECT run_id, batch, journey, step, {_HISTOGRAM_FIGURES}
FROM requests
WHERE (run_id, batch) IN (SELECT run_id, batch FROM ingested_files FINAL WHERE state = 'done')
GROUP BY run_id, batch, journey, step, duration_ms
"""


# The three levels of a summary, and how an exact quantile comes from a histogram: ClickHouse's
# quantileExactInclusive of level q over n sorted values x1..xn takes h = q * (n - 1) + 1, k = floor(h) and gives
# xk + (h - k) * (x(k+1) - xk) (xn when k >= n). xk is the smallest duration whose running count reaches k, and
# x(k+1) the smallest whose running count passes k; the same arithmetic in Float64 gives the same value bit for bit.
SUMMARY_LEVELS = (0.5, 0.95, 0.99)
_SUMMARY_LEVELS = ", ".join(str(q) for q in SUMMARY_LEVELS)
_AT = ", ".join(f"minIf(duration_ms, below >= k[{i}])" for i in range(1, len(SUMMARY_LEVELS) + 1))
_ABOVE = ", ".join(f"minIf(duration_ms, below > k[{i}])" for i in range(1, len(SUMMARY_LEVELS) + 1))
_QUANTILE = "CASE WHEN k_[{i}] >= requests THEN top_ ELSE at_[{i}] + (h_[{i}] - k_[{i}]) * (above_[{i}] - at_[{i}]) END"


_SUMMARY_QUANTILES = ", ".join(_QUANTILE.format(i=i) for i in range(1, len(SUMMARY_LEVELS) + 1))
# A run's summary over batches {covered} (its done batches and the batch being committed, {batch}; '' for none): per
# step and over the whole run (overall = 1, journey and step empty), from the kept histograms of those batches
# (step_histograms). Its figures equal the raw reads' exact ones bit for bit; `batches` and `batches_hash` say which
# batches it covers. Its columns go into step_summaries by position.
STEP_SUMMARY = f"""
WITH histogram AS (
    SELECT journey, step, duration_ms, sum(n) AS hn, sum(errors) AS he, min(first_ts) AS hf, max(last_ts) AS hl
    FROM step_histograms
    WHERE run_id = {{run:String}} AND has({{covered:Array(String)}}, batch)
    GROUP BY journey, step, duration_ms
),
levels AS (
    SELECT 0 AS overall, journey, step, duration_ms, hn AS ln, he AS le, hf AS lf, hl AS ll FROM histogram
    UNION ALL
    SELECT 1 AS overall, '' AS journey, '' AS step, duration_ms, sum(hn) AS ln, sum(he) AS le, min(hf) AS lf,
           max(hl) AS ll
    FROM histogram GROUP BY duration_ms
),
ranked AS (
    SELECT overall, journey, step, duration_ms, ln, le, lf, ll,
           sum(ln) OVER (PARTITION BY overall, journey, step ORDER BY duration_ms
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS below,
           sum(ln) OVER (PARTITION BY overall, journey, step) AS total,
           arrayMap(q -> q * (total - 1) + 1, [{_SUMMARY_LEVELS}]) AS h, arrayMap(x -> toUInt64(x), h) AS k
    FROM levels
),
steps AS (
    SELECT overall, journey, step, any(total) AS requests, sum(le) AS errors_, min(lf) AS first_, max(ll) AS last_,
           any(h) AS h_, any(k) AS k_, max(duration_ms) AS top_, [{_AT}] AS at_, [{_ABOVE}] AS above_
    FROM ranked
    GROUP BY overall, journey, step
)
SELECT {{run:String}} AS summary_run, {{batch:String}} AS summary_batch, length({{covered:Array(String)}}) AS batches,
       arrayReduce('groupBitXor', arrayMap(b -> sipHash64(b), {{covered:Array(String)}})) AS batches_hash,
       overall, journey, step, requests, errors_, {_SUMMARY_QUANTILES}, first_, last_, now64(6) AS summarised_at
FROM steps
"""

# The runs that have batches recorded done: those a summary can cover.
SUMMARISABLE_RUNS = """
SELECT DISTINCT run_id FROM ingested_files FINAL WHERE state = 'done' ORDER BY run_id
"""

# The current summaries of the runs of `history` (a WITH name the query defines): those computed over exactly
# the run's done batches of now. A run without one (a batch being committed or rolled back, rows written
# outside an ingest) is read from its raw requests instead.
_CURRENT_SUMMARIES = """
    SELECT s.run_id AS run_id, s.overall AS overall, s.journey AS journey, s.step AS step,
           s.requests AS requests, s.errors AS errors, s.p50 AS p50, s.p95 AS p95, s.p99 AS p99,
           s.first_ts AS first_ts, s.last_ts AS last_ts
    FROM step_summaries AS s
    INNER JOIN (
        SELECT run_id, count() AS batches, groupBitXor(sipHash64(batch)) AS batches_hash
        FROM ingested_files FINAL
        WHERE state = 'done' AND run_id IN (SELECT run_id FROM history)
        GROUP BY run_id
    ) AS d ON s.run_id = d.run_id AND s.batches = d.batches AND s.batches_hash = d.batches_hash
    WHERE s.run_id IN (SELECT run_id FROM history)
    ORDER BY s.summarised_at DESC
    LIMIT 1 BY s.run_id, s.overall, s.journey, s.step
"""

# Per run and step of those runs (and per run: journey and step empty, when no journey or step is chosen), the
# figures of a trend, oldest first; throughput over the span of the requests counted. From each run's current
# summary, else from its requests.
STEP_HISTORY = f"""
WITH history AS ({_HISTORY_RUNS}),
     summed AS ({_CURRENT_SUMMARIES})
SELECT fingerprint, run_id, toString(started_at) AS started_at, tool, profile, spec_name, environment, journey,
       step, count, error_rate, p50, p95, p99, rps
FROM (
    SELECT h.fingerprint AS fingerprint, h.run_id AS run_id, h.started_at AS started_at, h.tool AS tool,
           h.profile AS profile, h.spec_name AS spec_name, h.environment AS environment, s.journey AS journey,
           s.step AS step, s.requests AS count, s.errors / s.requests AS error_rate, s.p50 AS p50, s.p95 AS p95,
           s.p99 AS p99, s.requests / greatest(dateDiff('millisecond', s.first_ts, s.last_ts) / 1000, 1) AS rps
    FROM summed AS s
    INNER JOIN history AS h ON s.run_id = h.run_id
    WHERE (s.overall = 1 AND {{journey:String}} = '' AND {{step:String}} = '')
       OR (s.overall = 0 AND ({{journey:String}} = '' OR s.journey = {{journey:String}})
           AND ({{step:String}} = '' OR s.step = {{step:String}}))
    UNION ALL
    SELECT h.fingerprint AS fingerprint, h.run_id AS run_id, h.started_at AS started_at, h.tool AS tool,
           h.profile AS profile, h.spec_name AS spec_name, h.environment AS environment, r.journey AS journey,
           r.step AS step, count() AS count, countIf({REQUEST_ERROR.condition}) / count() AS error_rate,
           quantileExactInclusive(0.5)(r.duration_ms) AS p50,
           quantileExactInclusive(0.95)(r.duration_ms) AS p95,
           quantileExactInclusive(0.99)(r.duration_ms) AS p99,
           count() / greatest(dateDiff('millisecond', min(r.ts), max(r.ts)) / 1000, 1) AS rps
    FROM requests AS r
    INNER JOIN history AS h ON r.run_id = h.run_id
    WHERE r.run_id IN (SELECT run_id FROM history WHERE NOT (run_id IN (SELECT run_id FROM summed)))
      AND ({{journey:String}} = '' OR r.journey = {{journey:String}}) AND ({{step:String}} = '' OR r.step = {{step:String}})
    GROUP BY GROUPING SETS (
        (h.fingerprint, h.run_id, h.started_at, h.tool, h.profile, h.spec_name, h.environment, r.journey, r.step),
        (h.fingerprint, h.run_id, h.started_at, h.tool, h.profile, h.spec_name, h.environment)
    )
    HAVING grouping(r.journey, r.step) = 0 OR ({{journey:String}} = '' AND {{step:String}} = '')
)
ORDER BY fingerprint, journey, step, started_at, run_id
"""

# The p95 per run and step (and per run) of a fingerprint's history, oldest first: its run-to-run noise. From
# each run's current summary, else from its requests.
NOISE_HISTORY = f"""
WITH history AS ({_HISTORY_RUNS}),
     summed AS ({_CURRENT_SUMMARIES})
SELECT run_id, toString(started_at) AS started, journey, step, p95, requests
FROM (
    SELECT s.run_id AS run_id, h.started_at AS started_at, s.journey AS journey, s.step AS step, s.p95 AS p95,
           s.requests AS requests
    FROM summed AS s
    INNER JOIN history AS h ON s.run_id = h.run_id
    UNION ALL
    SELECT h.run_id AS run_id, h.started_at AS started_at, r.journey AS journey, r.step AS step,
           quantileExactInclusive(0.95)(r.duration_ms) AS p95, count() AS requests
    FROM requests AS r
    INNER JOIN history AS h ON r.run_id = h.run_id
    WHERE r.run_id IN (SELECT run_id FROM history WHERE NOT (run_id IN (SELECT run_id FROM summed)))
    GROUP BY GROUPING SETS ((h.run_id, h.started_at, r.journey, r.step), (h.run_id, h.started_at))
)
ORDER BY journey, step, started_at, run_id
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

# The runs of a fingerprint a gate judged WORSE (their latest gate): left out of the history a run is judged
# against, and never an automatic baseline.
GATE_REGRESSED = """
SELECT run_id FROM gate_outcomes FINAL WHERE fingerprint = {fingerprint:String} AND worse > 0
"""

# A run's latest gate outcome, in the columns of records.GateOutcome.
_GATE_OUTCOME = """
SELECT run_id, outcome, exit_status, worse, inconclusive, baseline_id, toString(judged_at) AS judged_at
FROM gate_outcomes FINAL WHERE """
# The latest gate outcome of each run of a fingerprint.
GATE_OUTCOMES = _GATE_OUTCOME + "fingerprint = {fingerprint:String}\n"
# One run's latest gate outcome (none before it is gated); the runs of a set of repeats each hold the set's.
GATE_OUTCOME_OF_RUN = _GATE_OUTCOME + "run_id = {run:String}\n"

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

# The runs of `run`'s group (the tools of one invocation), in tool order; none when it has no group.
RUN_GROUP = """
SELECT run_id FROM runs FINAL
WHERE group_id != '' AND group_id = (SELECT any(group_id) FROM runs FINAL WHERE run_id = {run:String})
ORDER BY tool, started_at
"""

# The runs of the one group whose id starts with {group}, in tool order (several groups: the caller refuses).
GROUP_RUNS = """
SELECT run_id, group_id FROM runs FINAL
WHERE group_id != '' AND startsWith(group_id, {group:String})
ORDER BY group_id, tool, started_at
"""

COMPARISONS = """
SELECT run_id, baseline_id, journey, step, count_a, count_b, p50_a, p50_b, p95_a, p95_b, p99_a, p99_b,
       error_rate_a, error_rate_b, rps_a, rps_b, p_value, floor, noise, verdict, reason,
       toString(compared_at) AS compared_at
FROM comparisons FINAL
WHERE run_id = {run:String} AND ({baseline:String} = '' OR baseline_id = {baseline:String})
ORDER BY journey, step
"""

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9()]+)\}")


@functools.cache
def teach_sqlglot_plural_inclusive_quantiles() -> None:
    """sqlglot's ClickHouse parser knows quantileExactInclusive but not its plural form (sqlglot 30), and
    misreads `quantilesExactInclusive(0.5, 0.9)(x)` without it; teach it the one name."""
    from sqlglot.parsers import clickhouse as parser

    mapping = getattr(parser, "_AGG_FUNC_MAPPING", None)
    if isinstance(mapping, dict) and "quantilesExactInclusive" not in mapping:
        mapping["quantilesExactInclusive"] = ("quantilesExactInclusive", None)


def check(sql: str) -> exp.Expression:
    """Parse a query with sqlglot's ClickHouse dialect; refuse anything but a single SELECT."""
    import sqlglot
    import sqlglot.expressions as exp

    teach_sqlglot_plural_inclusive_quantiles()
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

# Interval aggregates (JMeter's InfluxDB backend listener): what JMeter computed per interval, not requests.
AGGREGATES = """
SELECT toString(ts) AS ts, tool, journey, step, status, metric, value, tags
FROM aggregates
WHERE run_id = {run:String} AND ({metric:String} = '' OR metric = {metric:String})
ORDER BY journey, step, status, metric, ts
"""

# A run's interval aggregates per step, status and source, folded over the intervals: each metric's sum, lowest,
# highest and latest value, and the count-weighted sum of the intervals' averages (report.tool_figures reads
# them as the tool's own figures). The backend listener's per-code error lines (no statut), its `internal` users
# line and its annotations are left out.
TOOL_STEP_FIGURES = """
SELECT journey, step, status, source, count() AS intervals,
       sumMap(f) AS sums, minMap(f) AS lows, maxMap(f) AS highs, argMax(f, t) AS last,
       sum(f['avg'] * f['count']) AS weighted_avg, sumIf(f['count'], mapContains(f, 'avg')) AS avg_weight
FROM (
    SELECT journey, step, status, tags['source'] AS source, ts AS t,
           CAST((groupArray(metric), groupArray(value)), 'Map(String, Float64)') AS f
    FROM aggregates
    WHERE run_id = {run:String} AND status != '' AND step != 'internal' AND metric != 'event'
    GROUP BY journey, step, status, source, t
)
GROUP BY journey, step, status, source
ORDER BY journey, step, status, source
"""

# The tool's own figures over time for the whole run (Locust's `Aggregated` name, JMeter's `all` transaction),
# one row per interval: every metric it gave then.
TOOL_TIMELINE = """
SELECT toString(ts) AS t, tags['source'] AS source,
       CAST((groupArray(metric), groupArray(value)), 'Map(String, Float64)') AS f
FROM aggregates
WHERE run_id = {run:String} AND status = 'all' AND step = {overall:String} AND metric != 'event'
GROUP BY ts, source
ORDER BY ts, source
"""

# Whether a run holds requests and interval aggregates (the gate cannot judge a run of aggregates alone).
RUN_HOLDS = """
SELECT (SELECT count() FROM requests WHERE run_id = {run:String}) AS requests,
       (SELECT count() FROM aggregates WHERE run_id = {run:String}) AS aggregates
"""

# A tool's own end-of-test summaries kept with a run (k6 --summary-export / handleSummary JSON).
TOOL_SUMMARIES = """
SELECT name, tool, summary FROM tool_summaries FINAL
WHERE run_id = {run:String}
ORDER BY name
"""

# A table's engine clause as ClickHouse keeps it (its TTL included).
TABLE_ENGINE = """
SELECT engine_full, create_table_query FROM system.tables
WHERE database = currentDatabase() AND name = {table:String}
"""

# -- reports -------------------------------------------------------------------------------------
# Percentiles in reports are exact over every sample: quantilesExactInclusive sorts a group's durations
# once and interpolates linearly between the two nearest ranks (numpy's default, and k6's), so any level
# (p75, p99.9) costs one sort. A report asks for up to LEVEL_SLOTS levels; unused slots repeat a level.
LEVEL_SLOTS = 12
_LEVELS = ", ".join(f"{{q{i}:Float64}}" for i in range(1, LEVEL_SLOTS + 1))

# Per step: counts, time spent, exact percentiles at the asked levels and APDEX counts (threshold in ms).
# Requests are stored in (run, journey, step) order, so the steps aggregate in that order, one at a time.
REPORT_STEPS = _with_failures(f"""
SELECT journey, step, any(service) AS service, count() AS count, $errors,
       sum(duration_ms) AS total_ms, avg(duration_ms) AS avg_ms, min(duration_ms) AS min_ms,
       max(duration_ms) AS max_ms,
       quantilesExactInclusive({_LEVELS})(duration_ms) AS levels,
       countIf(ok = 1 AND duration_ms <= {{apdex_ms:Float64}}) AS satisfied,
       countIf(ok = 1 AND duration_ms > {{apdex_ms:Float64}} AND duration_ms <= 4 * {{apdex_ms:Float64}})
           AS tolerating
FROM requests
WHERE run_id = {{run:String}}
GROUP BY journey, step
ORDER BY journey, step
SETTINGS optimize_aggregation_in_order = 1
""")

# The whole run at the same levels, with its time span.
REPORT_TOTALS = _with_failures(f"""
SELECT count() AS count, $errors, sum(duration_ms) AS total_ms, avg(duration_ms) AS avg_ms,
       max(duration_ms) AS max_ms,
       quantilesExactInclusive({_LEVELS})(duration_ms) AS levels,
       countIf(ok = 1 AND duration_ms <= {{apdex_ms:Float64}}) AS satisfied,
       countIf(ok = 1 AND duration_ms > {{apdex_ms:Float64}} AND duration_ms <= 4 * {{apdex_ms:Float64}})
           AS tolerating,
       toString(min(ts)) AS first_ts, toString(max(ts)) AS last_ts,
       greatest(dateDiff('millisecond', min(ts), max(ts)) / 1000, 1) AS span_s
FROM requests
WHERE run_id = {{run:String}}
""")

# The run over time in buckets of `bucket` seconds: P50/P90/P95/P99, throughput, errors and the mean number
# of requests in flight (time spent in requests per second of the bucket).
REPORT_TIMELINE = _with_failures("""
SELECT toString(toDateTime(toStartOfInterval(ts, toIntervalSecond({bucket:UInt32})), 'UTC')) AS t,
       count() / {bucket:UInt32} AS rps, $request_errors AS errors, $check_failures AS check_failures,
       sum(duration_ms) / (1000 * {bucket:UInt32}) AS in_flight,
       quantilesExactInclusive(0.5, 0.9, 0.95, 0.99)(duration_ms) AS levels
FROM requests
WHERE run_id = {run:String}
GROUP BY t
ORDER BY t
""")

# Failed requests by HTTP status and message over the whole run.
REPORT_ERRORS_BY_STATUS = _with_failures("""
SELECT status, error, count() AS count, uniqExact(journey, step) AS steps
FROM requests
WHERE run_id = {run:String} AND $request_error
GROUP BY status, error
ORDER BY count DESC, status, error
LIMIT 20
""")

# Infrastructure samples averaged per bucket of the latency timeline, one series per source, metric and labels.
REPORT_INFRA = """
SELECT toString(toDateTime(toStartOfInterval(ts, toIntervalSecond({bucket:UInt32})), 'UTC')) AS t, source, metric,
       toJSONString(mapSort(labels)) AS series_labels, avg(value) AS mean
FROM infra_samples
WHERE run_id = {run:String} AND isFinite(value)
GROUP BY t, source, metric, series_labels
ORDER BY source, metric, series_labels, t
"""

# The load level per bucket of `bucket` seconds: k6's `vus` gauge when the run has k6 points, else the distinct
# threads (JMeter thread names) that sent requests in the bucket (uniq: exact at these cardinalities, and a
# fraction of uniqExact's time over millions of requests).
REPORT_LOAD_LEVEL = """
SELECT t, max(level) AS level FROM (
    SELECT toString(toDateTime(toStartOfInterval(ts, toIntervalSecond({bucket:UInt32})), 'UTC')) AS t,
           max(value) AS level
    FROM k6_points
    WHERE run_id = {run:String} AND metric = 'vus'
    GROUP BY t
    UNION ALL
    SELECT toString(toDateTime(toStartOfInterval(ts, toIntervalSecond({bucket:UInt32})), 'UTC')) AS t,
           toFloat64(uniq(vu)) AS level
    FROM requests
    WHERE run_id = {run:String} AND vu != ''
    GROUP BY t
)
GROUP BY t
ORDER BY t
"""

# The journeys a run's requests name (to read an SLO's scope back).
REPORT_JOURNEYS = """
SELECT DISTINCT journey FROM requests WHERE run_id = {run:String} ORDER BY journey
"""

# The slowest requests that carry a trace id (trace context), to look up in a tracing UI.
SLOWEST_TRACED = """
SELECT toString(ts) AS ts, journey, step, status, ok, duration_ms, trace_id
FROM requests
WHERE run_id = {run:String} AND trace_id != ''
ORDER BY duration_ms DESC, ts, trace_id
LIMIT {limit:UInt32}
"""


# The steps of a stepped load at once. Steps are whole buckets of `bucket` seconds from `origin` (Unix
# seconds): `parts[k + 1]` is the step (1-based, 0 for none) of bucket k; the figures of one scope per step
# (scope filters empty when overall) with exact percentiles at the levels q1..q12.
REPORT_WINDOWS = _with_failures("""
SELECT multiIf(toUnixTimestamp(ts) < {origin:UInt32}, 0,
               arrayElement({parts:Array(UInt32)}, intDiv(toUnixTimestamp(ts) - {origin:UInt32}, {bucket:UInt32}) + 1))
           AS part,
       count() AS count, $request_errors AS errors, $error_rate, $check_failure_rate,
       avg(duration_ms) AS avg, max(duration_ms) AS max,
       quantilesExactInclusive(""" + _LEVELS + """)(duration_ms) AS levels
FROM requests
WHERE run_id = {run:String}
  AND ({journey:String} = '' OR journey = {journey:String})
  AND ({step:String} = '' OR step = {step:String})
  AND ({service:String} = '' OR service = {service:String})
GROUP BY part
HAVING part > 0
ORDER BY part
""")

# -- the dashboard ------------------------------------------------------------------------------

# The runs list with its filters (an empty value does not filter; times are UTC text, '' for none),
# each run's request and error counts and how many of its SLOs were judged and failed. requests is sorted
# by run_id first, so counting per run in that order streams instead of hashing (10M requests: about
# 10x faster).
RUN_LIST = """
WITH chosen AS (
    SELECT run_id, name, tool, tool_version, spec_name, profile, status, source, environment, git_sha, branch,
           started_at, ended_at, notes, labels, group_id, fingerprint
    FROM runs FINAL
    WHERE ({tool:String} = '' OR tool = {tool:String})
      AND startsWith(group_id, {group:String}) AND startsWith(fingerprint, {fingerprint:String})
      AND ({spec:String} = '' OR spec_name = {spec:String})
      AND ({profile:String} = '' OR profile = {profile:String})
      AND ({branch:String} = '' OR branch = {branch:String})
      AND ({environment:String} = '' OR environment = {environment:String})
      AND ({status:String} = '' OR status = {status:String})
      AND ({since:String} = '' OR started_at >= parseDateTime64BestEffortOrZero({since:String}, 3, 'UTC'))
      AND ({until:String} = '' OR started_at < parseDateTime64BestEffortOrZero({until:String}, 3, 'UTC'))
    ORDER BY started_at DESC, run_id DESC
    LIMIT {limit:UInt32}
)
SELECT r.run_id AS run_id, r.name AS name, r.tool AS tool, r.tool_version AS tool_version,
       r.spec_name AS spec_name, r.profile AS profile, r.status AS status, r.source AS source,
       r.environment AS environment, r.git_sha AS git_sha, r.branch AS branch,
       toString(r.started_at) AS started_at, toString(r.ended_at) AS ended_at, r.notes AS notes,
       r.group_id AS group_id, r.fingerprint AS fingerprint, q.requests AS requests, q.errors AS errors, s.slos AS slos, s.slos_failed AS slos_failed
FROM chosen AS r
LEFT JOIN (
    SELECT run_id, count() AS requests, countIf(ok = 0) AS errors FROM requests
    WHERE run_id IN (SELECT run_id FROM chosen)
    GROUP BY run_id
) AS q ON q.run_id = r.run_id
LEFT JOIN (
    SELECT run_id, count() AS slos, countIf(passed = 0) AS slos_failed FROM slo_results FINAL
    WHERE run_id IN (SELECT run_id FROM chosen)
    GROUP BY run_id
) AS s ON s.run_id = r.run_id
ORDER BY r.started_at DESC, r.run_id DESC
SETTINGS optimize_aggregation_in_order = 1
"""

# The newest runs for a picker: what names a run, nothing counted.
RUN_CHOICES = """
SELECT run_id, name, tool, status FROM runs FINAL
ORDER BY started_at DESC, run_id DESC
LIMIT {limit:UInt32}
"""

# The values the runs list can be filtered by, and the span of start times.
RUN_FACETS = """
SELECT arraySort(groupUniqArray(tool)) AS tool, arraySort(groupUniqArray(spec_name)) AS spec_name,
       arraySort(groupUniqArray(profile)) AS profile, arraySort(groupUniqArray(branch)) AS branch,
       arraySort(groupUniqArray(environment)) AS environment, arraySort(groupUniqArray(status)) AS status,
       toString(min(started_at)) AS first_started, toString(max(started_at)) AS last_started, count() AS runs
FROM runs FINAL
"""

# What changes whenever anything is written: a run saved, a file (or a live chunk) ingested, SLOs judged,
# samples scraped. Counts of whole tables come from part metadata, so this reads almost nothing.
DATA_VERSION = """
SELECT (SELECT count() FROM runs) AS runs, (SELECT toString(max(updated_at)) FROM runs) AS runs_updated,
       (SELECT count() FROM ingested_files) AS files,
       (SELECT toString(max(ingested_at)) FROM ingested_files) AS files_updated,
       (SELECT count() FROM requests) AS requests, (SELECT count() FROM slo_results) AS slos,
       (SELECT count() FROM infra_samples) AS infra
"""

# Infrastructure samples of a run in time buckets: the mean and the last value of each series (a counter's
# rate comes from the last values), series named by source, metric and labels.
INFRA_OVER_TIME = """
SELECT toStartOfInterval(ts, toIntervalSecond({bucket:UInt32})) AS t, source, metric,
       toString(labels) AS labels, avg(value) AS mean, argMax(value, ts) AS last
FROM infra_samples
WHERE run_id = {run:String}
GROUP BY t, source, metric, labels
ORDER BY metric, source, labels, t
LIMIT {limit:UInt32}
"""

# The database a table of the ad-hoc SQL page may be qualified with.
CURRENT_DATABASE = """
SELECT currentDatabase() AS database
"""

# The columns of perfhouse's tables, for the SQL page's schema list.
TABLE_COLUMNS = """
SELECT table, name, type FROM system.columns
WHERE database = currentDatabase() AND has({tables:Array(String)}, table)
ORDER BY table, position
"""

# Each run's latency distribution (of one journey or step, '' for all) as quantiles at DISTRIBUTION_LEVELS:
# the compare page draws the distributions from these hundred points per run, never from every request.
DISTRIBUTION_LEVELS = (*(i / 100 for i in range(1, 100)), 0.995, 0.999)
LATENCY_DISTRIBUTION = """
SELECT run_id, count() AS count, min(duration_ms) AS min_ms, max(duration_ms) AS max_ms,
       quantilesExactInclusive(LEVELS)(duration_ms) AS levels
FROM requests
WHERE has({runs:Array(String)}, run_id) AND ({journey:String} = '' OR journey = {journey:String})
  AND ({step:String} = '' OR step = {step:String})
GROUP BY run_id
ORDER BY run_id
""".replace("LEVELS", ", ".join(f"{q:g}" for q in DISTRIBUTION_LEVELS))

# The groups of several runs (one invocation with several tools), newest first: the compare page's choices.
RUN_GROUPS = """
SELECT group_id, arraySort(groupArray(tool)) AS tools, arraySort(groupArray(run_id)) AS run_ids,
       any(spec_name) AS spec_name, any(profile) AS profile, toString(max(started_at)) AS last_started
FROM runs FINAL
WHERE group_id != ''
GROUP BY group_id
HAVING count() > 1
ORDER BY max(started_at) DESC, group_id
LIMIT {limit:UInt32}
"""

# The fingerprints with their newest run, newest first: the trends page's choices.
FINGERPRINTS = """
SELECT fingerprint, any(spec_name) AS spec_name, any(tool) AS tool, any(profile) AS profile,
       any(environment) AS environment, count() AS runs, argMax(run_id, started_at) AS newest_run
FROM runs FINAL
WHERE fingerprint != '' AND status IN ('completed', 'imported')
GROUP BY fingerprint
ORDER BY max(started_at) DESC, fingerprint
LIMIT {limit:UInt32}
"""


# Which of these writes (content hashes) a run already holds: recorded by the results receiver with the
# hash of the batch file that carries them, and counted only once that batch is done.
RECEIVED_WRITES = """
SELECT DISTINCT sha256 FROM received_writes
WHERE run_id = {run:String} AND sha256 IN {hashes:Array(String)}
  AND batch_sha256 IN (
      SELECT sha256 FROM ingested_files FINAL WHERE run_id = {run:String} AND state = 'done'
  )
"""

# Every query of this module by name, gathered once here at its end: each public upper-case string above is
# a query (check_all() parses them all; tests/integration/test_sql_statements.py runs it).
ALL = {name: sql for name, sql in globals().items() if name.isupper() and name[0] != "_" and isinstance(sql, str)}
