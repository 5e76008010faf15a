"""Typed rows the warehouse hands to reports, analysis, the CLI and the dashboard (one class per kind of row)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunRecord:
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

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RunRecord:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunListing:
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

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RunListing:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepStats:
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

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> StepStats:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ErrorCause:
    """One cause of failure in a run (queries.ERRORS_BY_CAUSE): a request error by status and text, or a failed
    check by its name (`kind` says which), with the step it happened in and how often."""

    kind: str
    journey: str
    step: str
    status: int
    error: str
    count: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> ErrorCause:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StatusErrors:
    """Failed requests of one HTTP status and error text over a run (queries.REPORT_ERRORS_BY_STATUS), with the
    number of steps they happened in."""

    status: int
    error: str
    count: int
    steps: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> StatusErrors:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SlowSample:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Bottleneck:
    """One step ranked by impact (analysis.insight.bottlenecks): its share of all request time plus its share of
    all failed requests; the tail ratio p99/p50 (None over a p50 of 0) says how uneven it is."""

    name: str
    journey: str
    step: str
    time_share: float
    error_share: float
    tail_ratio: float | None
    impact: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TimelinePoint:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Read tables ---------------------------------------------------------------------------------------------------
# The rows of the Warehouse's other reads (store.py): the runs list, pickers and facets of the dashboard, a run
# over time, its infrastructure samples and interval aggregates, and the SQL page's schema. Fields in their
# query's order, so `to_dict` is the row as the query gives it.


@dataclass(frozen=True)
class RunListRow:
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

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RunListRow:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunChoice:
    """A run as a picker names it (queries.RUN_CHOICES): nothing counted."""

    run_id: str
    name: str = ""
    tool: str = ""
    status: str = ""

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RunChoice:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunFacets:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DistributionPoint:
    """A duration and the fraction of requests at or below it."""

    ms: float
    fraction: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LatencyDistribution:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunGroup:
    """A group of several runs, one invocation with several tools (queries.RUN_GROUPS): its tools and runs
    (sorted), the spec and profile, and when its newest run started."""

    group_id: str
    tools: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    spec_name: str = ""
    profile: str = ""
    last_started: str = ""

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RunGroup:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FingerprintHistory:
    """One history of comparable runs (queries.FINGERPRINTS): its fingerprint, what it runs, how many finished
    runs it holds and the newest of them."""

    fingerprint: str
    spec_name: str = ""
    tool: str = ""
    profile: str = ""
    environment: str = ""
    runs: int = 0
    newest_run: str = ""

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> FingerprintHistory:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TableColumn:
    """A column of one of perfhouse's tables (queries.TABLE_COLUMNS) and its ClickHouse type."""

    table: str
    name: str
    type: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> TableColumn:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LatencyBucket:
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

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> LatencyBucket:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InfraBucket:
    """One infrastructure series in one time bucket of a run (queries.INFRA_OVER_TIME): its mean and its last
    value (a counter's rate comes from the last values); `labels` as ClickHouse writes a map ({'k':'v'}). None
    for a value that is no number (a NaN sample)."""

    t: str
    source: str
    metric: str
    labels: str
    mean: float | None
    last: float | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> InfraBucket:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InfraSample:
    """One scraped infrastructure sample as stored (queries.INFRA_SAMPLES); None for a NaN value."""

    ts: str
    source: str
    metric: str
    labels: dict[str, str]
    value: float | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> InfraSample:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IntervalAggregate:
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

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> IntervalAggregate:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StoredComparison:
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

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> StoredComparison:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateOutcome:
    """A run's latest gate outcome (queries.GATE_OUTCOMES, written by analysis.gate): the outcome and exit status,
    how many rows were WORSE and INCONCLUSIVE, the baseline it was judged against and when."""

    run_id: str
    outcome: str
    exit_status: int
    worse: int
    inconclusive: int
    baseline_id: str
    judged_at: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> GateOutcome:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
