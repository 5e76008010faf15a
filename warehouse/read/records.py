"""Typed rows the warehouse hands to reports, analysis, the CLI and the dashboard (one class per kind of row)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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


# Report sections: what a run's report holds beside the rows above (warehouse.report.reports builds them from
# queries.REPORT_*). Each reads by attribute; `to_dict` is the JSON a report prints, key for key and in its order,
# and `record[key]` reads that JSON by name.


class _ByName:
    """`record[key]`: the value `to_dict` gives under `key` (a JSON report's name for it)."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

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
    def of(cls, row: Mapping[str, Any], labels: Sequence[str], run_span_s: float, apdex: float | None) -> Figures:
        """A row of REPORT_TOTALS (the whole run: it has span_s) or REPORT_STEPS; `labels` name its `levels` in
        slot order (a repeated level repeats its label), throughput divides by the whole run's span."""
        count = int(row["count"])
        percentiles: dict[str, float | None] = {}
        for label, value in zip(labels, row["levels"], strict=True):
            percentiles[label] = None if value is None or not math.isfinite(float(value)) else float(value)
        whole = "span_s" in row
        return cls(
            journey="" if whole else row["journey"], step="" if whole else row["step"],
            service="" if whole else row["service"], count=row["count"], errors=row["errors"],
            check_failures=row["check_failures"], checks_total=row["checks_total"],
            checks_failed=row["checks_failed"], total_ms=row["total_ms"], avg_ms=row["avg_ms"],
            min_ms=None if whole else row["min_ms"], max_ms=row["max_ms"],
            first_ts=row["first_ts"] if whole else "", last_ts=row["last_ts"] if whole else "",
            span_s=row["span_s"] if whole else None, percentiles=percentiles,
            error_rate=int(row["errors"]) / count if count else None,
            check_failure_rate=int(row["check_failures"]) / count if count else None,
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Climb(_ByName):
    """The bucket where latency climbed: its P95, the early level it left and the ratio of the two."""

    t: str
    p95_ms: float
    early_p95_ms: float
    ratio: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Saturation(_ByName):
    """A correlated series near its peak when latency climbed: its value then and its share of its peak."""

    series: str
    value: float
    share_of_peak: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Infra(_ByName):
    """The infrastructure section: the series (most correlated with latency first), the names of the correlated
    ones, when latency climbed and what saturated then."""

    series: list[InfraSeries] = field(default_factory=list)
    correlated: list[str] = field(default_factory=list)
    climb: Climb | None = None
    saturated: Saturation | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Capacity(_ByName):
    """A stepped profile's steps, its knee (the highest level met with every lower one met too) and the criterion
    a step was judged by."""

    steps: list[LoadStep]
    knee: float | None
    criterion: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
class RunTotals(_ByName):
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

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RunTotals:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
