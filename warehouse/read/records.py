"""Typed rows the warehouse hands to reports, analysis, the CLI and the dashboard (one class per kind of row)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Self, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class Row:
    """A record (a frozen dataclass) whose JSON is its fields as they are: `to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(cast("DataclassInstance", self))


class QueryRow(Row):
    """A record whose fields are its query's columns, in their order: `of` builds it from the row, and `to_dict`
    gives the row again."""

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Self:
        return cls(**row)


@dataclass(frozen=True)
class RunRecord(QueryRow):
    """One run as stored (queries.RUN), fields in the query's order: `to_dict` is what JSON outputs print."""

    run_id: str
    name: str = ""
    tool: str = ""
    tool_version: str = ""
    spec_name: str = ""
    spec_hash: str = ""
    fingerprint: str = ""
    group_id: str = ""
    script_hash: str = ""
    profile: str = ""
    status: str = ""
    source: str = ""
    environment: str = ""
    git_sha: str = ""
    branch: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    started_at: str = ""  # UTC, as ClickHouse writes a DateTime64(3): 2026-01-01 00:00:00.000
    ended_at: str | None = None  # None while the run goes on
    notes: str = ""


@dataclass(frozen=True)
class RunListing(QueryRow):
    """One line of the runs list (queries.RUNS), fields in the query's order: a run and its request count."""

    run_id: str
    name: str = ""
    tool: str = ""
    tool_version: str = ""
    spec_name: str = ""
    profile: str = ""
    status: str = ""
    source: str = ""
    environment: str = ""
    git_sha: str = ""
    branch: str = ""
    fingerprint: str = ""
    group_id: str = ""
    started_at: str = ""
    ended_at: str | None = None
    notes: str = ""
    requests: int = 0


@dataclass(frozen=True)
class StepStats(QueryRow):
    """One step's figures in a run (queries.STEP_STATS), fields in the query's order: requests, failures of both
    kinds (queries.FAILURES) and latency in milliseconds, percentiles exact as k6 computes them."""

    journey: str
    step: str
    service: str
    count: int
    errors: int  # request errors
    check_failures: int  # requests with a failed check
    checks_total: int
    checks_failed: int
    avg_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class ErrorCause(QueryRow):
    """One cause of failure in a run (queries.ERRORS_BY_CAUSE): a request error by status and text, or a failed
    check by its name (`kind` says which), with the step it happened in and how often."""

    kind: str
    journey: str
    step: str
    status: int
    error: str
    count: int


@dataclass(frozen=True)
class StatusErrors(QueryRow):
    """Failed requests of one HTTP status and error text over a run (queries.REPORT_ERRORS_BY_STATUS), with the
    number of steps they happened in."""

    status: int
    error: str
    count: int
    steps: int


@dataclass(frozen=True)
class SlowSample(Row):
    """One of a run's slowest requests that sent a trace id (queries.SLOWEST_TRACED), with the URL of its trace
    ('' without a URL template)."""

    ts: str
    journey: str
    step: str
    status: int
    ok: int
    duration_ms: float
    trace_id: str
    trace_url: str = ""

    @classmethod
    def of(cls, row: Mapping[str, Any], trace_url: str = "") -> SlowSample:
        return cls(**row, trace_url=trace_url)


@dataclass(frozen=True)
class Bottleneck(Row):
    """One step ranked by impact (analysis.insight.bottlenecks): its share of all request time plus its share of
    all failed requests; the tail ratio p99/p50 (None over a p50 of 0) says how uneven it is."""

    name: str
    journey: str
    step: str
    time_share: float
    error_share: float
    tail_ratio: float | None
    impact: float


@dataclass(frozen=True)
class TimelinePoint(Row):
    """One bucket of a run over time (queries.REPORT_TIMELINE): requests per second, request errors (in the bucket
    and per second), requests in flight, and the bucket's percentiles in milliseconds (None on no figure)."""

    t: str
    rps: float
    errors: int
    errors_per_s: float
    in_flight: float
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


# Report sections: what a run's report holds beside the rows above (warehouse.report.reports builds them from
# queries.REPORT_*). Each reads by attribute; `to_dict` is the JSON a report prints, key for key and in its order,
# and `record[key]` reads that JSON by name.


class _ByName(Row):
    """`record[key]`: the value `to_dict` gives under `key` (a JSON report's name for it)."""

    def __getitem__(self, key: str) -> object:
        return self.to_dict()[key]


@dataclass(frozen=True, kw_only=True)
class Figures(_ByName):
    """The requests of a whole run (queries.REPORT_TOTALS) or of one step (queries.REPORT_STEPS) in a report:
    counts, both kinds of failure (queries.FAILURES), latency in milliseconds with exact percentiles at the levels
    the report asked for, APDEX and throughput. A step has its journey, step and service and a min_ms; the whole
    run has the span of its requests (span_s, None for a step)."""

    journey: str = ""
    step: str = ""
    service: str = ""
    count: int
    errors: int  # request errors
    check_failures: int  # requests with a failed check
    checks_total: int
    checks_failed: int
    total_ms: float
    avg_ms: float | None  # None (or NaN) without requests
    min_ms: float | None = None  # a step's; the whole run leaves it out
    max_ms: float
    first_ts: str = ""  # the whole run's first and last request (UTC)
    last_ts: str = ""
    span_s: float | None = None  # the whole run's: first to last request, at least 1 s (None for a step)
    percentiles: dict[str, float | None]  # label (p50, p99.9) → ms, in ascending level; None on no figure
    error_rate: float | None  # None without requests
    check_failure_rate: float | None
    apdex: float | None
    throughput: float  # requests per second of the whole run's span

    @classmethod
    def of(cls, row: ReportTotalsRow | ReportStepRow, labels: Sequence[str], run_span_s: float,
           apdex: float | None) -> Figures:
        """The whole run (a ReportTotalsRow) or one step (a ReportStepRow); `labels` name its `levels` in slot
        order (a repeated level repeats its label), throughput divides by the whole run's span."""
        count = int(row.count)
        percentiles: dict[str, float | None] = {}
        for label, value in zip(labels, row.levels, strict=True):
            percentiles[label] = None if value is None or not math.isfinite(float(value)) else float(value)
        whole = row if isinstance(row, ReportTotalsRow) else None
        step = row if isinstance(row, ReportStepRow) else None
        return cls(
            journey=step.journey if step else "", step=step.step if step else "",
            service=step.service if step else "", count=row.count, errors=row.errors,
            check_failures=row.check_failures, checks_total=row.checks_total,
            checks_failed=row.checks_failed, total_ms=row.total_ms, avg_ms=row.avg_ms,
            min_ms=step.min_ms if step else None, max_ms=row.max_ms,
            first_ts=whole.first_ts if whole else "", last_ts=whole.last_ts if whole else "",
            span_s=whole.span_s if whole else None, percentiles=percentiles,
            error_rate=int(row.errors) / count if count else None,
            check_failure_rate=int(row.check_failures) / count if count else None,
            apdex=apdex, throughput=count / run_span_s if count else 0.0,
        )

    @property
    def is_step(self) -> bool:
        return self.span_s is None

    def percentile(self, label: str) -> float | None:
        """The figure at `p50`, `p99.9`...; None when the report did not compute that level."""
        return self.percentiles.get(label)

    @property
    def p50_ms(self) -> float | None:
        return self.percentile("p50")

    @property
    def p90_ms(self) -> float | None:
        return self.percentile("p90")

    @property
    def p95_ms(self) -> float | None:
        return self.percentile("p95")

    @property
    def p99_ms(self) -> float | None:
        return self.percentile("p99")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = (
            {"journey": self.journey, "step": self.step, "service": self.service} if self.is_step else {})
        out |= {"count": self.count, "errors": self.errors, "check_failures": self.check_failures,
                "checks_total": self.checks_total, "checks_failed": self.checks_failed, "total_ms": self.total_ms,
                "avg_ms": self.avg_ms}
        if self.is_step:
            out["min_ms"] = self.min_ms
        out["max_ms"] = self.max_ms
        if not self.is_step:
            out |= {"first_ts": self.first_ts, "last_ts": self.last_ts, "span_s": self.span_s}
        out |= {f"{label}_ms": value for label, value in self.percentiles.items()}
        return out | {"error_rate": self.error_rate, "check_failure_rate": self.check_failure_rate,
                      "apdex": self.apdex, "throughput": self.throughput}


@dataclass(frozen=True)
class StepApdex(_ByName):
    name: str  # journey / step
    apdex: float | None
    count: int


@dataclass(frozen=True)
class Apdex(_ByName):
    """APDEX at threshold T: satisfied up to T, tolerating up to 4T, failed requests frustrated; the run's and each
    step's."""

    t_ms: float
    overall: float | None
    steps: list[StepApdex] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"t_ms": self.t_ms, "overall": self.overall, "steps": [s.to_dict() for s in self.steps]}


@dataclass(frozen=True)
class InfraPoint(_ByName):
    t: str  # the bucket's start (UTC)
    value: float


@dataclass(frozen=True)
class InfraSeries(_ByName):
    """One scraped series on the latency's time axis (a counter as its rate per second), its peak and its Pearson
    correlation with P95 per bucket (None when it cannot be told)."""

    name: str
    source: str
    metric: str
    labels: dict[str, str]
    points: list[InfraPoint]
    peak: float
    correlation: float | None
    correlated: bool


@dataclass(frozen=True)
class Climb(_ByName):
    """The bucket where latency climbed: its P95, the early level it left and the ratio of the two."""

    t: str
    p95_ms: float
    early_p95_ms: float
    ratio: float


@dataclass(frozen=True)
class Saturation(_ByName):
    """A correlated series near its peak when latency climbed: its value then and its share of its peak."""

    series: str
    value: float
    share_of_peak: float


@dataclass(frozen=True)
class Infra(_ByName):
    """The infrastructure section: the series (most correlated with latency first), the names of the correlated
    ones, when latency climbed and what saturated then."""

    series: list[InfraSeries] = field(default_factory=list)
    correlated: list[str] = field(default_factory=list)
    climb: Climb | None = None
    saturated: Saturation | None = None


@dataclass(frozen=True)
class LoadStep(_ByName):
    """One step of a stepped load (a plateau of `level` VUs or threads, start to end UTC): its requests, their
    rate, errors and percentiles, the SLOs it missed and whether it met the report's criterion."""

    level: float
    start: str
    end: str
    count: int
    rps: float
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    missed: list[str]
    met: bool


@dataclass(frozen=True)
class Capacity(_ByName):
    """A stepped profile's steps, its knee (the highest level met with every lower one met too) and the criterion
    a step was judged by."""

    steps: list[LoadStep]
    knee: float | None
    criterion: str


@dataclass(frozen=True)
class SummaryFigure(_ByName):
    """One figure of a tool's own end-of-test summary beside the warehouse's over the same requests; the JSON
    names the tool's value by the tool (`"k6": ...`)."""

    figure: str
    warehouse: float
    tool: str
    theirs: float
    difference: float

    def to_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "warehouse": self.warehouse, self.tool: self.theirs,
                "difference": self.difference}


@dataclass(frozen=True)
class RunTotals(QueryRow, _ByName):
    """A run's requests in all (queries.RUN_TOTALS), fields in the query's order: counts, both kinds of failure,
    latency in milliseconds with p50/p90/p95/p99 exact as k6 computes them (None or NaN without requests), the first
    and last request (UTC) and the seconds between them (at least 1)."""

    count: int
    errors: int  # request errors
    check_failures: int  # requests with a failed check
    checks_total: int
    checks_failed: int
    avg_ms: float | None
    max_ms: float
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    first_ts: str
    last_ts: str
    span_s: float


# Read tables ---------------------------------------------------------------------------------------------------
# The rows of the Warehouse's other reads (store.py): the runs list, pickers and facets of the dashboard, a run
# over time, its infrastructure samples and interval aggregates, and the SQL page's schema. Fields in their
# query's order, so `to_dict` is the row as the query gives it.


@dataclass(frozen=True)
class RunListRow(QueryRow):
    """One line of the dashboard's runs list (queries.RUN_LIST): a run, its request and request-error counts and
    how many of its SLOs were judged and failed."""

    run_id: str
    name: str = ""
    tool: str = ""
    tool_version: str = ""
    spec_name: str = ""
    profile: str = ""
    status: str = ""
    source: str = ""
    environment: str = ""
    git_sha: str = ""
    branch: str = ""
    started_at: str = ""
    ended_at: str | None = None  # None while the run goes on
    notes: str = ""
    group_id: str = ""
    fingerprint: str = ""
    requests: int = 0
    errors: int = 0
    slos: int = 0
    slos_failed: int = 0


@dataclass(frozen=True)
class RunChoice(QueryRow):
    """A run as a picker names it (queries.RUN_CHOICES): nothing counted."""

    run_id: str
    name: str = ""
    tool: str = ""
    status: str = ""


@dataclass(frozen=True)
class RunFacets(Row):
    """The values each runs filter can take (queries.RUN_FACETS: sorted, empty values left out), the span of
    start times and the number of runs."""

    tool: list[str] = field(default_factory=list)
    spec_name: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)
    branch: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    first_started: str = ""
    last_started: str = ""
    runs: int = 0

    FILTERS = ("tool", "spec_name", "profile", "branch", "environment", "status")  # the columns filtered by

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RunFacets:
        def kept(column: str) -> list[str]:
            return [str(x) for x in row[column] if x]

        return cls(kept("tool"), kept("spec_name"), kept("profile"), kept("branch"), kept("environment"),
                   kept("status"), str(row["first_started"]), str(row["last_started"]), int(row["runs"]))

    def values(self, column: str) -> list[str]:
        """The values of one filtered column (a name of FILTERS)."""
        if column not in self.FILTERS:
            raise KeyError(column)
        found: list[str] = getattr(self, column)
        return found


@dataclass(frozen=True)
class DistributionPoint(Row):
    """A duration and the fraction of requests at or below it."""

    ms: float
    fraction: float


@dataclass(frozen=True)
class LatencyDistribution(Row):
    """One run's duration distribution (queries.LATENCY_DISTRIBUTION) as points from its minimum (fraction 0)
    through its quantiles at queries.DISTRIBUTION_LEVELS to its maximum (fraction 1)."""

    run_id: str
    count: int
    points: list[DistributionPoint] = field(default_factory=list)

    @classmethod
    def of(cls, row: Mapping[str, Any], levels: tuple[float, ...]) -> LatencyDistribution:
        points = [DistributionPoint(float(row["min_ms"]), 0.0)]
        points += [DistributionPoint(float(v), q) for q, v in zip(levels, row["levels"], strict=True)]
        points.append(DistributionPoint(float(row["max_ms"]), 1.0))
        return cls(str(row["run_id"]), int(row["count"]), points)


@dataclass(frozen=True)
class RunGroup(QueryRow):
    """A group of several runs, one invocation with several tools (queries.RUN_GROUPS): its tools and runs
    (sorted), the spec and profile, and when its newest run started."""

    group_id: str
    tools: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    spec_name: str = ""
    profile: str = ""
    last_started: str = ""


@dataclass(frozen=True)
class FingerprintHistory(QueryRow):
    """One history of comparable runs (queries.FINGERPRINTS): its fingerprint, what it runs, how many finished
    runs it holds and the newest of them."""

    fingerprint: str
    spec_name: str = ""
    tool: str = ""
    profile: str = ""
    environment: str = ""
    runs: int = 0
    newest_run: str = ""


@dataclass(frozen=True)
class TableColumn(QueryRow):
    """A column of one of perfhouse's tables (queries.TABLE_COLUMNS) and its ClickHouse type."""

    table: str
    name: str
    type: str


@dataclass(frozen=True)
class LatencyBucket(QueryRow):
    """One step in one time bucket of a run (queries.LATENCY_OVER_TIME): requests per second, request errors,
    requests with a failed check and the bucket's percentiles in milliseconds."""

    t: str
    journey: str
    step: str
    rps: float
    errors: int
    check_failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class InfraBucket(QueryRow):
    """One infrastructure series in one time bucket of a run (queries.INFRA_OVER_TIME): its mean and its last
    value (a counter's rate comes from the last values); `labels` as ClickHouse writes a map ({'k':'v'}). None
    for a value that is no number (a NaN sample)."""

    t: str
    source: str
    metric: str
    labels: str
    mean: float | None
    last: float | None


@dataclass(frozen=True)
class InfraSample(QueryRow):
    """One scraped infrastructure sample as stored (queries.INFRA_SAMPLES); None for a NaN value."""

    ts: str
    source: str
    metric: str
    labels: dict[str, str]
    value: float | None


@dataclass(frozen=True)
class IntervalAggregate(QueryRow):
    """One figure a tool computed over one interval (queries.AGGREGATES: JMeter's backend listener, Locust's
    --csv statistics), not a request; None for a NaN value."""

    ts: str
    tool: str
    journey: str
    step: str
    status: str
    metric: str
    value: float | None
    tags: dict[str, str]


@dataclass(frozen=True)
class StoredComparison(QueryRow):
    """One row of a comparison as kept (queries.COMPARISONS, written by analysis.compare.store_comparison): a
    step (journey and step empty: overall) of run B against its baseline A, both runs' figures, the verdict and
    why."""

    run_id: str
    baseline_id: str
    journey: str
    step: str
    count_a: int
    count_b: int
    p50_a: float | None
    p50_b: float | None
    p95_a: float | None
    p95_b: float | None
    p99_a: float | None
    p99_b: float | None
    error_rate_a: float | None
    error_rate_b: float | None
    rps_a: float | None
    rps_b: float | None
    p_value: float | None
    floor: float
    noise: float | None
    verdict: str
    reason: str
    compared_at: str


@dataclass(frozen=True)
class GateOutcome(QueryRow):
    """A run's latest gate outcome (queries.GATE_OUTCOMES, written by analysis.gate): the outcome and exit status,
    how many rows were WORSE and INCONCLUSIVE, the baseline it was judged against and when."""

    run_id: str
    outcome: str
    exit_status: int
    worse: int
    inconclusive: int
    baseline_id: str
    judged_at: str


# Tool figures ----------------------------------------------------------------------------------------------------
# The rows a tool's folding (warehouse.tools.Folding) reads: its interval aggregates folded per step and over time.
# Fields in their query's order, so `to_dict` is the row as the query gives it.


@dataclass(frozen=True)
class ToolStepAggregate(QueryRow):
    """One step's interval aggregates of one status and source (queries.TOOL_STEP_FIGURES), folded over its
    intervals: each metric's sum, lowest, highest and latest value, and the count-weighted sum of the intervals'
    averages with its weight (the counts of the intervals that had an average)."""

    journey: str
    step: str
    status: str
    source: str
    intervals: int
    sums: dict[str, float]
    lows: dict[str, float]
    highs: dict[str, float]
    last: dict[str, float]
    weighted_avg: float
    avg_weight: float


@dataclass(frozen=True)
class ToolInterval(QueryRow):
    """The whole run's figures in one of the tool's intervals (queries.TOOL_TIMELINE): every metric it gave then,
    by the source that gave them."""

    t: str
    source: str
    f: dict[str, float]


# The report's query rows (report.reports reads them into its sections: Figures, TimelinePoint, Infra, Capacity).
# Fields in their query's order, as above.


@dataclass(frozen=True)
class ReportTotalsRow(QueryRow):
    """The whole run's requests at a report's levels (queries.REPORT_TOTALS): counts, both kinds of failure, time
    spent, latency in milliseconds with `levels` in the report's slot order, APDEX counts at its threshold, the
    first and last request (UTC) and the seconds between them (at least 1)."""

    count: int
    errors: int
    check_failures: int
    checks_total: int
    checks_failed: int
    total_ms: float
    avg_ms: float | None
    max_ms: float
    levels: list[float]
    satisfied: int
    tolerating: int
    first_ts: str
    last_ts: str
    span_s: float


@dataclass(frozen=True)
class ReportStepRow(QueryRow):
    """One step's requests at a report's levels (queries.REPORT_STEPS): as ReportTotalsRow, with the step's
    journey, step, service and fastest request instead of the run's span."""

    journey: str
    step: str
    service: str
    count: int
    errors: int
    check_failures: int
    checks_total: int
    checks_failed: int
    total_ms: float
    avg_ms: float | None
    min_ms: float
    max_ms: float
    levels: list[float]
    satisfied: int
    tolerating: int


@dataclass(frozen=True)
class ReportBucket(QueryRow):
    """One bucket of the run over time as queried (queries.REPORT_TIMELINE): requests per second, request errors,
    requests with a failed check, requests in flight and the bucket's P50, P90, P95 and P99 (`levels`, NaN on no
    figure); a report makes a TimelinePoint of it."""

    t: str
    rps: float
    errors: int
    check_failures: int
    in_flight: float
    levels: list[float]


@dataclass(frozen=True)
class ReportInfraMean(QueryRow):
    """One infrastructure series' mean in one bucket of the latency timeline (queries.REPORT_INFRA); its labels as
    JSON with sorted keys (the series' identity)."""

    t: str
    source: str
    metric: str
    series_labels: str
    mean: float


@dataclass(frozen=True)
class LoadLevel(QueryRow):
    """The load in one bucket (queries.REPORT_LOAD_LEVEL): k6's VUs, else the distinct threads that sent
    requests."""

    t: str
    level: float


@dataclass(frozen=True)
class ReportWindow(QueryRow):
    """One step of a stepped load in one scope (queries.REPORT_WINDOWS; `part` is the step, from 1): its requests,
    request errors, both failure rates, mean and highest duration and the percentiles at the levels asked
    (`levels`, in the query's slots)."""

    part: int
    count: int
    errors: int
    error_rate: float
    check_failure_rate: float
    avg: float
    max: float
    levels: list[float]

    FIGURES = ("error_rate", "check_failure_rate", "avg", "max")  # the SLO metrics a window has by name

    def figure(self, metric: str) -> float:
        """The window's value of an SLO metric other than a percentile (one of FIGURES)."""
        if metric not in self.FIGURES:
            raise KeyError(metric)
        value: float = getattr(self, metric)
        return value

