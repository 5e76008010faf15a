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
