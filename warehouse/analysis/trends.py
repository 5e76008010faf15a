"""Trends: a metric of each step run after run over the history of comparable runs, with change points."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from warehouse.analysis.changepoints import detect
from warehouse.engine.backends import Backend
from warehouse.errors import DataError
from warehouse.read import queries

METRICS = ("p50", "p95", "p99", "error_rate", "rps")
MAX_RUNS = 200  # newest runs per fingerprint a trend reads


@dataclass(frozen=True)
class Point:
    run_id: str
    started_at: str
    value: float
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "started_at": self.started_at, "value": self.value, "count": self.count}


@dataclass(frozen=True)
class TrendChange:
    """The series changes level at run `run_id` (the first run of the new level)."""

    run_id: str
    started_at: str
    index: int
    direction: str  # up | down
    before: float
    after: float
    change: float  # relative change of the level (+0.1: 10 % higher); for an error rate, absolute
    pvalue: float
    worse: bool  # up is worse for latency and errors, down for throughput

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "started_at": self.started_at, "index": self.index,
                "direction": self.direction, "before": self.before, "after": self.after, "change": self.change,
                "pvalue": self.pvalue, "worse": self.worse}


@dataclass
class Series:
    """One step's (or the whole run's: journey and step empty) metric over one fingerprint's runs."""

    fingerprint: str
    spec_name: str
    tool: str
    profile: str
    environment: str
    journey: str
    step: str
    metric: str
    points: list[Point] = field(default_factory=list)
    changes: list[TrendChange] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.journey}/{self.step}" if self.journey or self.step else "overall"

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "spec_name": self.spec_name, "tool": self.tool,
                "profile": self.profile, "environment": self.environment, "journey": self.journey,
                "step": self.step, "label": self.label, "metric": self.metric,
                "points": [p.to_dict() for p in self.points], "change_points": [c.to_dict() for c in self.changes]}


@dataclass
class Trends:
    metric: str
    series: list[Series]

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "series": [s.to_dict() for s in self.series]}


def trends(
    backend: Backend,
    metric: str = "p95",
    spec: str = "",
    journey: str = "",
    step: str = "",
    fingerprint: str = "",
    runs: int = MAX_RUNS,
) -> Trends:
    """Every step's `metric` (and the whole run's, unless a journey or step is chosen) over the newest `runs`
    completed runs of each fingerprint, with change points."""
    if metric not in METRICS:
        raise DataError(f"unknown trend metric {metric!r}; one of {', '.join(METRICS)}")
    rows = backend.query(queries.STEP_HISTORY, {"fingerprint": fingerprint, "spec": spec, "journey": journey,
                                                "step": step, "before": "", "exclude": "", "runs": runs})
    by_key: dict[tuple[str, str, str], Series] = {}
    for r in rows:
        if (journey or step) and not r["journey"] and not r["step"]:
            continue  # the whole run over the chosen journey or step: the step's own series says it
        value = r[metric]
        if value is None or not math.isfinite(float(value)):
            continue
        key = (str(r["fingerprint"]), str(r["journey"]), str(r["step"]))
        if key not in by_key:
            by_key[key] = Series(key[0], str(r["spec_name"]), str(r["tool"]), str(r["profile"]),
                                 str(r["environment"]), key[1], key[2], metric)
        by_key[key].points.append(Point(str(r["run_id"]), str(r["started_at"]), float(value), int(r["count"])))
    for series in by_key.values():
        series.changes = changes_of(series.points, metric)
    ordered = sorted(by_key.values(), key=lambda s: (s.spec_name, s.fingerprint, s.label != "overall", s.label))
    return Trends(metric, ordered)


def changes_of(points: list[Point], metric: str) -> list[TrendChange]:
    relative = metric != "error_rate"
    found = detect([p.value for p in points], relative=relative)
    out = []
    for cp in found:
        run = points[cp.index]
        change = cp.change if relative else cp.after - cp.before
        up = cp.after > cp.before
        out.append(TrendChange(run.run_id, run.started_at, cp.index, cp.direction, cp.before, cp.after, change,
                               cp.pvalue, worse=up != (metric == "rps")))
    return out
